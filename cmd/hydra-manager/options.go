package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// Options are hydra-manager's flags (docs/design.md §9).
type Options struct {
	Listen            string
	Store             string
	TokenFile         string
	InsecureNoAuth    bool
	TLSCert           string
	TLSKey            string
	TLSClientCA       string
	Kubeconfig        string
	LeaseNamespace    string
	LeaseName         string
	LeaseDuration     time.Duration
	KubeQPS           float32
	KubeBurst         int
	ShutdownTimeout   time.Duration
	RetentionInterval time.Duration
	// NodeReportTTL: a node report older than this protects nothing.
	NodeReportTTL time.Duration
	// MaxConcurrentPublishes bounds the publishes of bodies over 1 MiB
	// that run at once.
	MaxConcurrentPublishes int
}

// DefaultOptions are the documented defaults.
func DefaultOptions() Options {
	return Options{
		Listen:            ":8080",
		Store:             "bolt:///var/lib/hydra-manager/state.db",
		ShutdownTimeout:   30 * time.Second,
		RetentionInterval: time.Minute,
		LeaseNamespace:    os.Getenv("POD_NAMESPACE"),
		LeaseName:         "hydra-manager",
		LeaseDuration:     15 * time.Second,
		KubeQPS:           200,
		KubeBurst:         400,

		NodeReportTTL:          manager.DefaultNodeReportTTL,
		MaxConcurrentPublishes: httpapi.DefaultMaxConcurrentPublishes,
	}
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Listen, "listen", o.Listen, "address to serve the HTTP API, /metrics, /healthz and /readyz on")
	fs.StringVar(&o.Store, "store", o.Store, "state store: bolt:///PATH (single replica) or consul://HOST:PORT/PREFIX (HA; token from CONSUL_HTTP_TOKEN)")
	fs.StringVar(&o.TokenFile, "token-file", o.TokenFile, "bearer tokens, CSV lines TOKEN,ROLE[,GLOB] with ROLE admin|publisher|node|reader")
	fs.BoolVar(&o.InsecureNoAuth, "insecure-no-auth", o.InsecureNoAuth, "serve without authentication (development only)")
	fs.StringVar(&o.TLSCert, "tls-cert", o.TLSCert, "serve HTTPS (TLS 1.2+) with this PEM certificate (chain); "+
		"it and --tls-key are re-read when either file changes, so a rotated certificate (cert-manager) needs no restart. Plain HTTP when empty")
	fs.StringVar(&o.TLSKey, "tls-key", o.TLSKey, "the PEM private key of --tls-cert")
	fs.StringVar(&o.TLSClientCA, "tls-client-ca", o.TLSClientCA, "PEM CA bundle for mutual TLS: /v1 requests must present a client certificate it verifies "+
		"(/healthz, /readyz and /metrics do not, for probes and scrapers); read at start; needs --tls-cert")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig for the rollout controller; in-cluster config when empty and running in a pod")
	fs.StringVar(&o.LeaseNamespace, "lease-namespace", o.LeaseNamespace, "namespace of the rollout controller's Lease on a bbolt store (default $POD_NAMESPACE, else default)")
	fs.StringVar(&o.LeaseName, "lease-name", o.LeaseName, "name of that Lease")
	fs.DurationVar(&o.LeaseDuration, "lease-duration", o.LeaseDuration, "how long a Lease of a replica that vanished blocks the next (renewed at 2/3 of it)")
	fs.Float32Var(&o.KubeQPS, "kube-api-qps", o.KubeQPS, "requests per second the rollout controller may send the API server")
	fs.IntVar(&o.KubeBurst, "kube-api-burst", o.KubeBurst, "burst above --kube-api-qps")
	fs.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", o.ShutdownTimeout, "how long to let requests finish on SIGTERM")
	fs.DurationVar(&o.RetentionInterval, "retention-interval", o.RetentionInterval, "how often the leader applies retention")
	fs.DurationVar(&o.NodeReportTTL, "node-report-ttl", o.NodeReportTTL, "how long a node's report counts after the manager received it; "+
		"an older one no longer protects releases from retention nor blocks deleting a channel, and is shown stale (nodes report at least every minute)")
	fs.IntVar(&o.MaxConcurrentPublishes, "max-concurrent-publishes", o.MaxConcurrentPublishes, "how many publishes with a body over 1 MiB are read and stored at once; "+
		"others wait for a turn (each takes up to about 8 times its body in memory, see docs/manager.md)")
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", o.Listen, err)
	}
	if o.Store == "" {
		return errors.New("--store: must not be empty")
	}
	switch {
	case o.TokenFile == "" && !o.InsecureNoAuth:
		return errors.New("refusing to start without authentication: give --token-file, or --insecure-no-auth for development")
	case o.TokenFile != "" && o.InsecureNoAuth:
		return errors.New("--token-file and --insecure-no-auth contradict each other; give one")
	}
	if err := o.validateTLS(); err != nil {
		return err
	}
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
	}
	if o.ShutdownTimeout <= 0 || o.RetentionInterval <= 0 {
		return errors.New("--shutdown-timeout and --retention-interval must be positive")
	}
	if o.LeaseDuration < 3*time.Second {
		return fmt.Errorf("--lease-duration %s: must be at least 3s", o.LeaseDuration)
	}
	if o.KubeQPS <= 0 || o.KubeBurst <= 0 {
		return errors.New("--kube-api-qps and --kube-api-burst must be positive")
	}
	if o.LeaseName == "" {
		return errors.New("--lease-name: must not be empty")
	}
	// A TTL near the node agent's idle report interval (1m) would mark
	// live nodes stale between reports.
	if o.NodeReportTTL < 2*time.Minute {
		return fmt.Errorf("--node-report-ttl %s: must be at least 2m, twice the node agent's idle report interval", o.NodeReportTTL)
	}
	if o.MaxConcurrentPublishes < 1 {
		return fmt.Errorf("--max-concurrent-publishes %d: must be at least 1", o.MaxConcurrentPublishes)
	}
	return nil
}

// validateTLS checks that the TLS flags come together and name files;
// their contents are read by serverTLS.
func (o *Options) validateTLS() error {
	switch {
	case o.TLSCert == "" && o.TLSKey != "":
		return errors.New("--tls-key needs --tls-cert")
	case o.TLSCert != "" && o.TLSKey == "":
		return errors.New("--tls-cert needs --tls-key")
	case o.TLSCert == "" && o.TLSClientCA != "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are a part of TLS")
	}
	for _, f := range []struct{ flag, file string }{{"tls-cert", o.TLSCert}, {"tls-key", o.TLSKey}, {"tls-client-ca", o.TLSClientCA}} {
		if f.file == "" {
			continue
		}
		if _, err := os.Stat(f.file); err != nil {
			return fmt.Errorf("--%s: %w", f.flag, err)
		}
	}
	return nil
}
