// Package agent is the node agent: it long-polls the manager for the
// node's desired state, downloads the releases the node's views need in
// the background, applies flips the rollout controller asks for, removes
// releases no longer needed, and reports progress and views back. When the
// manager is unreachable it keeps serving what the node has.
package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Options configure an Agent.
type Options struct {
	// Node is this node's name (the downward API's spec.nodeName).
	Node string
	// Client talks to the manager with a node token.
	Client *client.Client
	// Cache and Views are the node's release store and pod views.
	Cache *cache.Cache
	Views *cache.Views
	// Memory and MemoryViews, when set, are the RAM tier and the views of
	// memory-medium volumes built from it.
	Memory      *cache.Memory
	MemoryViews *cache.Views
	// Downloads bounds how many releases download at once (default 2);
	// each download shares the cache's global request budget.
	Downloads int
	// ReportInterval is how often progress is reported while anything
	// changes (default 2s); an idle node reports every IdleReport (1m).
	ReportInterval, IdleReport time.Duration
	// PollWait is the long-poll's wait (default 60s).
	PollWait time.Duration
	// RetryBase and RetryMax bound the wait before a failed background
	// download is tried again: RetryBase, doubling with each failure, at
	// most RetryMax (defaults DefaultRetryBase and DefaultRetryMax).
	RetryBase, RetryMax time.Duration
	// Clock times the retries; default real time.
	Clock clock.WithDelayedExecution
	// Registerer receives the agent's metrics; nil for none.
	Registerer prometheus.Registerer
	// Staged names the channels of the volumes staged on the node (the
	// CSI node's records); nil: none. Their releases are kept even when
	// the manager does not know the channel (a volume of another manager).
	Staged func() (map[string]bool, error)
	// PartialGrace is how long a partial download nothing writes to is
	// kept for a resume before its space is taken back (default
	// cache.DefaultPartialGrace).
	PartialGrace time.Duration
	// Keyring holds the S3 credentials volumes brought (CSI secrets); the
	// agent downloads with them and checks them before a flip. nil: an
	// empty one (every view then reads with the node's credentials).
	Keyring *source.Keyring
	// Peer, when set, is reported so that the manager names this node to
	// others as a peer and names peers to it (--peer-listen); Routes and
	// Served come with it: the cache's peers, bound to this agent, and
	// what the node's peer server served.
	Peer   *release.PeerInfo
	Routes *PeerRoutes
	Served PeerServer
	// Labels are reported (NodeStatus.Labels) so that warm channels'
	// selectors match the node without Kubernetes (--node-labels).
	Labels map[string]string
}

// Agent runs the node's side of Hydra's control loop.
type Agent struct {
	opts    Options
	tiers   cache.Tiers // the node's releases and views: ensure, hold, flip
	metrics *metrics

	mu      sync.Mutex
	desired release.Desired
	have    bool // a desired state was received
	failed  map[string]release.Progress
	retries map[string]retry
	wake    chan struct{}
	// joining counts, by channel/version, the downloads waiting for the
	// manager to name peers (awaitPeers); they are reported pending.
	joining map[string]int
	// reportNow asks the report loop for a report at once.
	reportNow chan struct{}
	// warnedNoRAM: channels warm in memory already logged as kept on
	// disk, the node having no RAM tier.
	warnedNoRAM map[string]bool
}

// New builds an Agent.
func New(opts Options) (*Agent, error) {
	if opts.Node == "" || opts.Client == nil || opts.Cache == nil || opts.Views == nil {
		return nil, errors.New("agent: Node, Client, Cache and Views are required")
	}
	if err := release.ValidateNodeName(opts.Node); err != nil {
		return nil, err
	}
	if err := release.ValidateLabels("labels", opts.Labels); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if opts.Downloads <= 0 {
		opts.Downloads = 2
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = 2 * time.Second
	}
	if opts.IdleReport <= 0 {
		opts.IdleReport = time.Minute
	}
	if opts.PollWait <= 0 {
		opts.PollWait = 60 * time.Second
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.RetryMax < opts.RetryBase {
		opts.RetryMax = max(DefaultRetryMax, opts.RetryBase)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.PartialGrace <= 0 {
		opts.PartialGrace = cache.DefaultPartialGrace
	}
	if opts.Keyring == nil {
		opts.Keyring = source.NewKeyring()
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	tiers := cache.Tiers{Disk: opts.Cache, DiskViews: opts.Views, Memory: opts.Memory, MemoryViews: opts.MemoryViews}
	a := &Agent{opts: opts, tiers: tiers, metrics: met, failed: map[string]release.Progress{}, retries: map[string]retry{},
		wake: make(chan struct{}, 1), joining: map[string]int{}, reportNow: make(chan struct{}, 1), warnedNoRAM: map[string]bool{}}
	if opts.Routes != nil {
		opts.Routes.agent.Store(a)
	}
	return a, nil
}

func (a *Agent) log() klog.Logger { return klog.Background().WithValues("node", a.opts.Node) }

// Run polls, reconciles and reports until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.pollLoop(ctx) }()
	go func() { defer wg.Done(); a.reconcileLoop(ctx) }()
	go func() { defer wg.Done(); a.reportLoop(ctx) }()
	wg.Wait()
	return nil
}

// Poke asks for a reconcile now (a new view was created, say).
func (a *Agent) Poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// pollLoop long-polls the manager's desired state. Errors back off and
// retry forever: the node keeps serving what it has meanwhile.
func (a *Agent) pollLoop(ctx context.Context) {
	var index uint64
	backoff := time.Second
	for ctx.Err() == nil {
		d, err := a.opts.Client.Desired(ctx, a.opts.Node, index, a.opts.PollWait)
		if err != nil {
			if ctx.Err() == nil {
				a.metrics.errors.WithLabelValues("poll").Inc()
				a.log().V(2).Info("manager unreachable; serving what the node has", "err", err.Error(), "retryIn", backoff)
				sleep(ctx, backoff)
				backoff = min(backoff*2, 30*time.Second)
			}
			continue
		}
		backoff = time.Second
		if d.Index == index && a.hasDesired() {
			continue // the wait passed without a change
		}
		index = d.Index
		a.mu.Lock()
		a.desired, a.have = d, true
		a.mu.Unlock()
		a.Poke()
	}
}

func (a *Agent) hasDesired() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.have
}

// Desired returns the last desired state received and whether there is one.
func (a *Agent) Desired() (release.Desired, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.desired, a.have
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
