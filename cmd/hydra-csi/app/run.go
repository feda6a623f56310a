package app

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/driver"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Run parses args and serves until ctx ends (SIGTERM in main). When ready
// is not nil it receives the socket's path once the plugin serves.
func Run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	opts := DefaultOptions()
	fs := pflag.NewFlagSet("hydra-csi", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.AddFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return serve(ctx, opts, ready)
}

// node is what the node mode runs besides the CSI server.
type node struct {
	cache       *cache.Cache
	views       *cache.Views
	memory      *cache.Memory
	memoryViews *cache.Views
	agent       *agent.Agent
	peers       *peerServing
}

// serve wires the plugin and runs it:
//  1. the manager client (with the token), in controller mode the
//     Kubernetes client (PVC annotations), and in node mode the cache,
//     the RAM tier and the node agent;
//  2. the CSI server on the socket, then what replaces the sidecars when
//     asked: kubelet's registration socket and /healthz;
//  3. on ctx's end: unregister from kubelet, stop serving (running RPCs
//     may finish), then /healthz and the agent. Downloads in flight stop
//     with the process; they resume on restart.
func serve(ctx context.Context, opts Options, ready chan<- string) error {
	token, err := opts.token()
	if err != nil {
		return err
	}
	newClient := func(url string) (*client.Client, error) { return client.New(url, opts.clientOptions(token)...) }
	cl, err := newClient(opts.Manager) // (1)
	if err != nil {
		return err
	}
	// The S3 credentials volumes bring, shared by the CSI node service
	// (stage, publish) and the agent (background downloads, flips).
	keys := source.NewKeyring()
	dopts := driver.Options{Name: opts.DriverName, Controller: opts.controller(), Node: opts.node(),
		NodeID: opts.NodeID, Client: cl, NewClient: newClient, Keyring: keys,
		Manager: opts.Manager, AllowedManagers: opts.AllowedManagers, KubeletDir: opts.KubeletDir}
	if opts.controller() {
		if dopts.PVCs, err = opts.pvcGetter(); err != nil {
			return err
		}
	}
	// The node's metrics (store, agent) and the process's, on /metrics
	// of --health-address.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var n *node
	// d is set below, before the agent starts; the agent asks it which
	// channels staged volumes use.
	var d *driver.Driver
	if opts.node() {
		staged := func() (map[string]bool, error) { return d.StagedChannels() }
		if n, err = startNode(opts, cl, reg, keys, staged); err != nil {
			return err
		}
		dopts.Cache, dopts.Views, dopts.Agent = n.cache, n.views, n.agent
		if n.memory != nil {
			dopts.Memory, dopts.MemoryViews = n.memory, n.memoryViews
		}
	}
	d, err = driver.New(dopts)
	if err != nil {
		return err
	}
	srv, err := driver.Listen(opts.Endpoint, d) // (2)
	if err != nil {
		return err
	}
	side, err := startSidecars(opts, d, reg)
	if err != nil {
		srv.Stop(0)
		return err
	}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if n != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.agent.Run(agentCtx) }()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	klog.InfoS("hydra-csi serving", "endpoint", srv.Addr(), "mode", opts.Mode, "driver", opts.DriverName, "node", opts.NodeID)
	if ready != nil {
		ready <- srv.Addr()
	}
	select {
	case <-ctx.Done():
		err = nil
	case err = <-serveErr:
	case err = <-side.errs:
	}
	klog.InfoS("hydra-csi shutting down")
	side.stopRegistration() // (3)
	srv.Stop(opts.ShutdownTimeout)
	side.stopHealth()
	if n != nil {
		n.peers.stop()
	}
	stopAgent()
	wg.Wait()
	return err
}

// startNode opens the node's store, its RAM tier and the agent.
func startNode(opts Options, cl *client.Client, reg prometheus.Registerer, keys *source.Keyring, staged func() (map[string]bool, error)) (*node, error) {
	peers, err := newPeerServing(opts)
	if err != nil {
		return nil, err
	}
	copts := cache.Options{Root: opts.CacheRoot, Reader: source.NewReaderMux(source.FetchOptions{}), Registerer: reg,
		PartSize: opts.partBytes}
	aopts := agent.Options{Node: opts.NodeID, Client: cl, Registerer: reg, Keyring: keys,
		PartialGrace: opts.PartialDownloadGrace, Staged: staged, Labels: opts.labels}
	if peers != nil {
		copts.Peers = peers.routes
		aopts.Peer, aopts.Routes = peers.info, peers.routes
	}
	c, err := cache.New(copts)
	if err != nil {
		peers.stop()
		return nil, err
	}
	if peers != nil {
		if err := peers.serve(opts, c, reg); err != nil {
			return nil, err
		}
		aopts.Served = peers.server
	}
	// Partial downloads a run before this one gave up on give their space
	// back now rather than at the agent's first pass.
	if _, err := c.SweepPartials(opts.PartialDownloadGrace); err != nil {
		klog.ErrorS(err, "Removing abandoned partial downloads at start-up")
	}
	n := &node{cache: c, views: cache.NewViews(c.Layout()), peers: peers}
	if opts.SpareViewTrees {
		if err := n.views.EnableSpares(cache.SpareOptions{Hold: c.Hold, Registerer: reg}); err != nil {
			return nil, err
		}
	}
	if opts.MemoryRoot != "" {
		if n.memory, err = cache.NewMemory(c, opts.MemoryRoot, opts.memoryBytes); err != nil {
			return nil, err
		}
		n.memoryViews = cache.NewViews(n.memory.Layout())
	}
	aopts.Cache, aopts.Views, aopts.Memory, aopts.MemoryViews = c, n.views, n.memory, n.memoryViews
	n.agent, err = agent.New(aopts)
	if err != nil {
		peers.stop()
		return nil, fmt.Errorf("node agent: %w", err)
	}
	// Downloads past the watermarks or a quota evict what the agent says
	// the node does not need.
	err = c.SetBudget(cache.Budget{HighWatermark: opts.CacheHighWatermark, LowWatermark: opts.CacheLowWatermark, Needed: n.agent.Needed})
	if err != nil {
		peers.stop()
		return nil, err
	}
	return n, nil
}
