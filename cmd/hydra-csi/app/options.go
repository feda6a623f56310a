// Package app is hydra-csi's command: flags, wiring and lifecycle. It is a
// package of its own so that tests (tests/sanity) run the real plugin
// in-process, exactly as the binary does.
package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/driver"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Modes of --mode.
const (
	ModeController = "controller"
	ModeNode       = "node"
	ModeAll        = "all"
)

// Options are hydra-csi's flags (docs/design.md §9).
type Options struct {
	Mode       string
	Endpoint   string
	NodeID     string
	CacheRoot  string
	MemoryRoot string
	MemorySize string
	Manager    string
	TokenFile  string
	// managerTLSOptions: --manager-ca-file, --manager-client-cert/-key
	// (options_tls.go).
	managerTLSOptions
	DriverName string
	// Kubeconfig is the controller's way to the Kubernetes API (PVC
	// annotations); empty means in-cluster when in a pod, else none.
	Kubeconfig string
	// ShutdownTimeout bounds how long running RPCs may finish on SIGTERM.
	ShutdownTimeout time.Duration
	// KubeletRegistrationDir is kubelet's plugin registry (usually
	// /var/lib/kubelet/plugins_registry); empty leaves registration to the
	// node-driver-registrar sidecar.
	KubeletRegistrationDir string
	// KubeletCSIEndpoint is the CSI socket's path as kubelet sees it on
	// the host; empty means the path of Endpoint.
	KubeletCSIEndpoint string
	// HealthAddress serves GET /healthz (the Identity Probe); empty leaves
	// that to the livenessprobe sidecar.
	HealthAddress string
	// SpareViewTrees keeps one view tree of each release that pods use or
	// move to linked ahead (cache.Views.EnableSpares).
	SpareViewTrees bool
	// PartialDownloadGrace is how long a partial download nothing writes to
	// keeps its space for a resume (cache.Cache.SweepPartials).
	PartialDownloadGrace time.Duration
	// securityOptions: --kubelet-dir, --allowed-manager (options_security.go).
	securityOptions
	// peerOptions: --peer-listen and the rest of peer distribution
	// (options_peer.go).
	peerOptions
	// labelOptions: --node-labels (options_labels.go).
	labelOptions
	// budgetOptions: --cache-high-watermark, --cache-low-watermark
	// (options_budget.go).
	budgetOptions

	memoryBytes    int64
	kubeletCSIPath string
}

// DefaultOptions are the documented defaults; the node name and manager
// come from the environment (the downward API's NODE_NAME, HYDRA_MANAGER).
func DefaultOptions() Options {
	return Options{
		Mode:              ModeNode,
		Endpoint:          "unix:///csi/csi.sock",
		NodeID:            os.Getenv("NODE_NAME"),
		CacheRoot:         "/var/lib/hydra",
		Manager:           os.Getenv("HYDRA_MANAGER"),
		managerTLSOptions: managerTLSFromEnv(os.Getenv),
		DriverName:        driver.DefaultName,
		ShutdownTimeout:   30 * time.Second,
		SpareViewTrees:    true,

		PartialDownloadGrace: cache.DefaultPartialGrace,
		peerOptions:          defaultPeerOptions(),
		budgetOptions:        defaultBudgetOptions(),
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Mode, "mode", o.Mode, "services to serve: controller, node (with the node agent) or all")
	fs.StringVar(&o.Endpoint, "endpoint", o.Endpoint, "CSI endpoint, unix:///PATH (its directory is made 0700)")
	fs.StringVar(&o.NodeID, "node-id", o.NodeID, "this node's name (default $NODE_NAME)")
	fs.StringVar(&o.CacheRoot, "cache-root", o.CacheRoot, "the node's release store, views and records (docs/design.md §4)")
	fs.StringVar(&o.MemoryRoot, "memory-root", o.MemoryRoot, "where to mount the tmpfs of medium=memory volumes; none when empty")
	fs.StringVar(&o.MemorySize, "memory-size", o.MemorySize, "size of that tmpfs, e.g. 4Gi or 512Mi")
	fs.StringVar(&o.Manager, "manager", o.Manager, "manager URL (default $HYDRA_MANAGER)")
	fs.StringVar(&o.TokenFile, "token-file", o.TokenFile, "file holding the bearer token for the manager (default $HYDRA_TOKEN)")
	o.addManagerTLSFlags(fs)
	fs.StringVar(&o.DriverName, "driver-name", o.DriverName, "CSI driver name")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig of the API the controller reads PVC annotations from (default: in-cluster when in a pod, else none)")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long running RPCs may finish on SIGTERM")
	fs.StringVar(&o.KubeletRegistrationDir, "kubelet-registration-dir", o.KubeletRegistrationDir, "kubelet's plugin registry, e.g. /var/lib/kubelet/plugins_registry: register with kubelet there (node mode; off when empty, as with the node-driver-registrar sidecar)")
	fs.StringVar(&o.KubeletCSIEndpoint, "kubelet-csi-endpoint", o.KubeletCSIEndpoint, "the CSI socket's path as kubelet sees it on the host (default: the path of --endpoint)")
	fs.StringVar(&o.HealthAddress, "health-address", o.HealthAddress, "serve GET /healthz (the Identity Probe) and GET /metrics on this address, e.g. :9808; off when empty")
	fs.BoolVar(&o.SpareViewTrees, "spare-view-trees", o.SpareViewTrees, "keep a view tree of each release that pods use or move to linked ahead, so that a pod start or flip on the disk tier takes it by one rename instead of linking every file")
	fs.DurationVar(&o.PartialDownloadGrace, "partial-download-grace", o.PartialDownloadGrace, "how long a partial download nothing writes to keeps its disk space for a resume; then, and at start-up past it, the space comes back")
	o.addSecurityFlags(fs)
	o.addPeerFlags(fs)
	o.addLabelFlags(fs)
	o.addBudgetFlags(fs)
}

// node and controller report what the mode serves.
func (o *Options) node() bool       { return o.Mode == ModeNode || o.Mode == ModeAll }
func (o *Options) controller() bool { return o.Mode == ModeController || o.Mode == ModeAll }

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	switch o.Mode {
	case ModeController, ModeNode, ModeAll:
	default:
		return fmt.Errorf("--mode %q: want controller, node or all", o.Mode)
	}
	if o.Endpoint == "" {
		return errors.New("--endpoint: must not be empty")
	}
	if o.Manager == "" {
		return errors.New("--manager: required (or set HYDRA_MANAGER)")
	}
	if err := o.validateManagerTLS(); err != nil {
		return err
	}
	if o.DriverName == "" || len(o.DriverName) > 63 {
		return fmt.Errorf("--driver-name %q: must be 1 to 63 characters", o.DriverName)
	}
	if o.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout: must be positive")
	}
	if o.PartialDownloadGrace <= 0 {
		return fmt.Errorf("--partial-download-grace %s: must be positive", o.PartialDownloadGrace)
	}
	if err := o.validateHealth(); err != nil {
		return err
	}
	if err := o.validateSecurity(); err != nil {
		return err
	}
	if !o.node() {
		return o.validateNoRegistration()
	}
	if err := o.validateRegistration(); err != nil {
		return err
	}
	if err := o.validatePeer(); err != nil {
		return err
	}
	if err := o.validateLabels(); err != nil {
		return err
	}
	if err := o.validateBudget(); err != nil {
		return err
	}
	return o.validateNode()
}

func (o *Options) validateNode() error {
	if o.NodeID == "" {
		return errors.New("--node-id: required in node mode (or set NODE_NAME)")
	}
	if err := release.ValidateNodeName(o.NodeID); err != nil {
		return fmt.Errorf("--node-id: %w", err)
	}
	if !filepath.IsAbs(o.CacheRoot) {
		return fmt.Errorf("--cache-root %q: must be an absolute path", o.CacheRoot)
	}
	switch {
	case o.MemoryRoot == "" && o.MemorySize != "":
		return errors.New("--memory-size needs --memory-root")
	case o.MemoryRoot == "":
		return nil
	case !filepath.IsAbs(o.MemoryRoot):
		return fmt.Errorf("--memory-root %q: must be an absolute path", o.MemoryRoot)
	}
	n, err := parseSize(o.MemorySize)
	if err != nil {
		return fmt.Errorf("--memory-size %q: %w", o.MemorySize, err)
	}
	o.memoryBytes = n
	return nil
}

// parseSize reads a byte count with an optional binary (Ki, Mi, Gi, Ti)
// or decimal (K, M, G, T) suffix.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
		{"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, errors.New("want a positive size such as 4Gi, 512Mi or 1000000")
	}
	return n * mult, nil
}

// token reads the bearer token: --token-file, else $HYDRA_TOKEN.
func (o *Options) token() (string, error) {
	if o.TokenFile == "" {
		return os.Getenv("HYDRA_TOKEN"), nil
	}
	raw, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}
