// Package manager is Hydra's control plane core: channels, releases,
// retention, node desired state and reports, and the leader's background
// loops. It imports no HTTP; package manager/httpapi adapts it to /v1.
package manager

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/hydra-csi/hydra/pkg/store"
)

// Errors of the core beyond the store's; the HTTP layer maps each to a status.
var (
	// ErrInUse: the channel or release is still used by volumes.
	ErrInUse = errors.New("in use")
	// ErrPinned: the operation would move the head of a pinned channel.
	ErrPinned = errors.New("channel is pinned")
	// ErrNoRelease: there is no release to move to (e.g. nothing before the head).
	ErrNoRelease = errors.New("no such release to move to")
	// ErrShuttingDown: the manager is stopping.
	ErrShuttingDown = errors.New("manager is shutting down")
)

// Options configure a Manager.
type Options struct {
	// Store is where state lives; required.
	Store *store.Store
	// Clock drives timestamps and the background loops; default real time.
	Clock clock.WithTicker
	// Registerer receives the manager's metrics; default a fresh registry.
	Registerer prometheus.Registerer
	// RetentionInterval is how often the leader applies retention.
	RetentionInterval time.Duration
	// SweepGrace is how old an unreferenced manifest blob must be before
	// the leader removes it (a publish in flight writes blobs first).
	SweepGrace time.Duration
	// Kube is the API server the rollout controller drains and reloads
	// pods through (docs/design.md §6). Nil: no Kubernetes, and views move to the
	// head a few at a time without drain (planFlips).
	Kube kubernetes.Interface
	// Lease, with Kube, makes the rollout controller also hold a
	// Kubernetes Lease (see Lease); nil relies on the store's leadership.
	Lease *Lease
	// NodeReportTTL is how long a node's report counts after the manager
	// received it: an older one stops protecting releases from retention
	// and stops blocking channel deletion, and is shown stale. Default
	// DefaultNodeReportTTL.
	NodeReportTTL time.Duration
	// PeerSecret is what nodes that serve peers sign their tokens to each
	// other with (release.Desired.PeerSecret); every replica must have
	// the same one (hydra-manager derives it from the token file, see
	// auth.Tokens.PeerSecret). Empty: 32 random bytes of this process.
	PeerSecret []byte
}

// DefaultNodeReportTTL is ten idle report intervals of the node agent
// (one a minute), so a live node never goes stale between reports.
const DefaultNodeReportTTL = 10 * time.Minute

// Manager is the control plane core. Its methods are safe for concurrent use.
type Manager struct {
	store   *store.Store
	clock   clock.WithTicker
	metrics *metrics
	opts    Options

	// snap is the latest channel snapshot that long-polls answer from; it is
	// refreshed by one watch loop so that a thousand waiting nodes cost one
	// store read per change, not a thousand.
	snapMu  sync.Mutex
	snap    snapshot
	changed chan struct{}
	ready   bool
	stopped bool

	// started is when this manager was built; no report is stale before
	// started+NodeReportTTL (see stale).
	started time.Time

	// peerSecret is Options.PeerSecret in hex, as nodes are sent it.
	peerSecret string
	// kubeNodes are the Nodes' labels with Kubernetes (zones.go), for
	// zones and warm selectors; nodeLabelChanges asks the watch loop for
	// a refresh when they change.
	kubeNodes        kubeNodes
	nodeLabelChanges chan struct{}
	// nodeLabelsDirty asks the leader's node labeller (nodelabels.go)
	// for a pass when the Nodes' labels change.
	nodeLabelsDirty chan struct{}
}

// New builds a Manager. Call Run to start its loops.
func New(opts Options) (*Manager, error) {
	if opts.Store == nil {
		return nil, errors.New("manager: no store")
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.SweepGrace <= 0 {
		opts.SweepGrace = time.Hour
	}
	if opts.NodeReportTTL <= 0 {
		opts.NodeReportTTL = DefaultNodeReportTTL
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	if len(opts.PeerSecret) == 0 {
		// Replicas then disagree: a node whose long-poll moves to another
		// replica gets another secret, and its peers refuse its tokens
		// until they too have polled that replica (it fetches from the
		// origin meanwhile).
		opts.PeerSecret = make([]byte, 32)
		if _, err := rand.Read(opts.PeerSecret); err != nil {
			return nil, fmt.Errorf("manager: peer secret: %w", err)
		}
	}
	m := &Manager{store: instrumentStore(opts.Store, met.storeErrors), clock: opts.Clock, opts: opts, metrics: met, changed: make(chan struct{}),
		peerSecret: hex.EncodeToString(opts.PeerSecret), kubeNodes: kubeNodes{labels: map[string]map[string]string{}, deleted: map[string]bool{}}, nodeLabelChanges: make(chan struct{}, 1),
		nodeLabelsDirty: make(chan struct{}, 1)}
	m.started = m.now()
	return m, nil
}

// Run watches the store for changes and campaigns for leadership, running
// the leader's loops while it leads, until ctx ends. It returns when every
// goroutine it started has stopped.
func (m *Manager) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.watchLoop(ctx) }()
	go func() { defer wg.Done(); m.leaderLoop(ctx) }()
	if m.opts.Kube != nil {
		// Every replica answers long-polls, so every one follows the
		// Nodes' labels, not only the leader.
		wg.Add(1)
		go func() { defer wg.Done(); m.watchNodes(ctx) }()
	}
	wg.Wait()
	m.stop()
	return nil
}

// Ready reports whether the manager serves consistent state: its first
// snapshot is loaded and the store answers.
func (m *Manager) Ready(ctx context.Context) error {
	m.snapMu.Lock()
	ready, stopped := m.ready, m.stopped
	m.snapMu.Unlock()
	switch {
	case stopped:
		return ErrShuttingDown
	case !ready:
		return errors.New("manager: state not loaded yet")
	}
	return m.store.Ping(ctx)
}

// Shutdown wakes every long-poll so that an HTTP server can drain quickly;
// later long-polls return at once with ErrShuttingDown.
func (m *Manager) Shutdown() { m.stop() }

func (m *Manager) stop() {
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if !m.stopped {
		m.stopped = true
		close(m.changed)
	}
}

func (m *Manager) now() time.Time { return m.clock.Now().UTC() }

// logger for background work.
func (m *Manager) logger() klog.Logger { return klog.Background().WithName("manager") }
