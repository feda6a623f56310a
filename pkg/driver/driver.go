// Package driver is Hydra's CSI plugin: the identity, controller and node
// services over the node's release store (package cache), the node agent
// and the manager's API. It is a thin adapter: validation at the edge, one
// error mapping (errors.go), one in-flight set per volume ID.
package driver

import (
	"context"
	"errors"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	mount "k8s.io/mount-utils"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/source"
)

// DefaultName is the driver's name (docs/design.md §2).
const DefaultName = "hydra.csi.dev"

// Ensurer makes a release present on the node (the node agent).
type Ensurer interface {
	// Ensure makes the release present and proves that creds (nil: the
	// node's own) can read it.
	Ensure(ctx context.Context, channel, version string, creds *source.Credentials) error
	// Poke asks for a reconcile now: a view was added or removed.
	Poke()
}

// Options configure a Driver. Controller needs Client; Node needs NodeID,
// Client, Cache and Views.
type Options struct {
	// Name is the driver name (--driver-name).
	Name string
	// Controller and Node choose the services served (--mode).
	Controller, Node bool
	// NodeID is this node's name (--node-id, NODE_NAME).
	NodeID string
	// Client talks to the default manager (--manager).
	Client *client.Client
	// NewClient returns a client of another manager, for volumes with a
	// `manager` attribute; nil refuses such volumes.
	NewClient func(url string) (*client.Client, error)
	// Cache and Views are the node's disk store and its views.
	Cache *cache.Cache
	Views *cache.Views
	// Memory and MemoryViews are the RAM tier; nil without --memory-root.
	Memory      *cache.Memory
	MemoryViews *cache.Views
	// Agent downloads through the default manager; nil downloads directly.
	Agent Ensurer
	// Mounter checks and unmounts targets (binding them is bindReadOnly,
	// straight to the kernel); nil uses the system's.
	Mounter mount.Interface
	// PVCs reads the PVCs whose annotations name a volume's channel
	// (controller); nil when there is no Kubernetes API (--kubeconfig).
	PVCs PVCGetter
	// Manager is the URL of Client's manager (--manager); AllowedManagers
	// are the others a `manager` attribute may name (--allowed-manager).
	// The plugin's token goes to these only.
	Manager         string
	AllowedManagers []string
	// Keyring remembers the S3 credentials volumes bring (CSI secrets), for
	// the node agent's flips; nil: a keyring of the driver's own.
	Keyring *source.Keyring
	// KubeletDir confines the paths of node requests (--kubelet-dir);
	// empty means DefaultKubeletDir.
	KubeletDir string
}

// Driver implements the CSI services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	opts     Options
	tiers    cache.Tiers // the node's releases and views: ensure, hold, link
	mounter  mount.Interface
	inflight inFlight
	paths    pathGuard
	managers managers

	mu      sync.Mutex
	clients map[string]*client.Client
}

// New checks opts and returns a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if !opts.Controller && !opts.Node {
		return nil, errors.New("driver: serve the controller, the node, or both")
	}
	if opts.Client == nil {
		return nil, errors.New("driver: a manager client is required")
	}
	if opts.Node && (opts.NodeID == "" || opts.Cache == nil || opts.Views == nil) {
		return nil, errors.New("driver: the node service needs NodeID, Cache and Views")
	}
	if (opts.Memory == nil) != (opts.MemoryViews == nil) {
		return nil, errors.New("driver: Memory and MemoryViews go together")
	}
	if opts.Mounter == nil {
		opts.Mounter = mount.New("")
	}
	if opts.Keyring == nil {
		opts.Keyring = source.NewKeyring()
	}
	d := &Driver{opts: opts, mounter: opts.Mounter, clients: map[string]*client.Client{},
		tiers: cache.Tiers{Disk: opts.Cache, DiskViews: opts.Views, Memory: opts.Memory, MemoryViews: opts.MemoryViews}}
	var err error
	if d.managers, err = newManagers(opts.Manager, opts.AllowedManagers); err != nil {
		return nil, err
	}
	if opts.Node {
		if err := d.guardPaths(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// guardPaths confines node requests to the kubelet directory, outside the
// stores of both tiers.
func (d *Driver) guardPaths() error {
	dir := d.opts.KubeletDir
	if dir == "" {
		dir = DefaultKubeletDir
	}
	stores := []string{d.opts.Cache.Layout().Root}
	if d.opts.Memory != nil {
		stores = append(stores, d.opts.Memory.Layout().Root)
	}
	g, err := newPathGuard(dir, stores...)
	d.paths = g
	return err
}
