package agent

import (
	"context"
	"encoding/hex"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

// PeerClient reads ranges from other nodes (peer.Client).
type PeerClient interface {
	ReadRange(ctx context.Context, addr string, secret []byte, r peer.RangeRequest, wait time.Duration, w io.Writer) (int64, error)
}

// PeerServer is what the agent reports of the node's serving (peer.Server).
type PeerServer interface {
	Served(channel, version string) int64
	ServedTotal() int64
}

// PeerRoutes is the node's cache.Peers: the peers the manager names in
// the desired state, and the client that reads from them. The cache is
// built before the agent, so PeerRoutes is made first and New binds it.
type PeerRoutes struct {
	node   string
	client PeerClient
	agent  atomic.Pointer[Agent]

	mu     sync.Mutex
	index  uint64
	secret []byte
	plans  map[string]*peer.Plan
}

// NewPeerRoutes returns the routes of node, reading through client.
func NewPeerRoutes(node string, client PeerClient) *PeerRoutes {
	return &PeerRoutes{node: node, client: client}
}

// refresh rebuilds the plans and secret when a new desired state came;
// the caller holds mu.
func (p *PeerRoutes) refresh() {
	a := p.agent.Load()
	if a == nil {
		p.plans, p.secret = nil, nil
		return
	}
	d, ok := a.Desired()
	if !ok || (p.plans != nil && d.Index == p.index) {
		return
	}
	p.index, p.plans, p.secret = d.Index, map[string]*peer.Plan{}, nil
	if d.PeerSecret == "" {
		return
	}
	secret, err := hex.DecodeString(d.PeerSecret)
	if err != nil || len(secret) < 16 {
		a.log().Error(err, "the manager sent a peer secret that is not 16 or more hex bytes; fetching from the origin only")
		return
	}
	p.secret = secret
	for _, rp := range d.Peers {
		if err := rp.Validate(); err != nil {
			a.log().Error(err, "the manager named peers the node cannot use", "channel", rp.Channel, "release", rp.Version)
			continue
		}
		if plan := peer.NewPlan(p.node, rp); plan != nil {
			p.plans[rp.Channel+"/"+rp.Version+"@"+rp.Identity.String()] = plan
		}
	}
}

// Plan implements cache.Peers.
func (p *PeerRoutes) Plan(channel, version string, id release.Identity) *peer.Plan {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh()
	if p.secret == nil {
		return nil
	}
	if plan := p.plans[channel+"/"+version+"@"+id.String()]; plan != nil {
		return plan
	}
	// A manager that sends no identity names the release by its name.
	return p.plans[channel+"/"+version+"@"+release.Identity{}.String()]
}

// Secret is the current peer secret (nil: none), for the server's tokens.
func (p *PeerRoutes) Secret() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh()
	return p.secret
}

// ReadRange implements cache.Peers.
func (p *PeerRoutes) ReadRange(ctx context.Context, to release.Peer, r peer.RangeRequest, wait time.Duration, w io.Writer) (int64, error) {
	secret := p.Secret()
	n, err := p.client.ReadRange(ctx, to.Address, secret, r, wait, w)
	if err != nil {
		klog.FromContext(ctx).V(5).Info("peer read failed", "peer", to.Node, "err", err.Error())
	}
	return n, err
}

// PeerJoinWait bounds how long a download the manager names no peers for
// waits for them. Several nodes staging a new release at once would
// otherwise each fetch it from the origin until their reports reach the
// manager and its answer reaches them. After peerAloneAfter the node asks
// the manager directly: a node alone with the release (no one else
// fetches or holds it) starts then, not at the end of the wait.
const (
	PeerJoinWait   = 2 * time.Second
	peerAloneAfter = 700 * time.Millisecond
)

// named reports whether the current desired state names peers for the
// release (any publish of the name).
func (p *PeerRoutes) named(channel, version string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh()
	if p.secret == nil {
		return false
	}
	prefix := channel + "/" + version + "@"
	for key := range p.plans {
		if len(key) > len(prefix) && key[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// awaitPeers, before the node downloads a release the manager names no
// peers for, reports the release as wanted at once (so that the manager
// counts the node in the release's swarm) and waits up to PeerJoinWait
// for peers to be named. Nothing happens without peer distribution.
func (a *Agent) awaitPeers(ctx context.Context, channel, version string) {
	r := a.opts.Routes
	if r == nil || r.named(channel, version) {
		return
	}
	key := channel + "/" + version
	a.mu.Lock()
	a.joining[key]++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.joining[key]--; a.joining[key] <= 0 {
			delete(a.joining, key)
		}
		a.mu.Unlock()
	}()
	a.reportSoon()
	deadline := time.NewTimer(PeerJoinWait)
	defer deadline.Stop()
	alone := time.NewTimer(peerAloneAfter)
	defer alone.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !r.named(channel, version) {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			a.log().V(4).Info("no peers named in time; downloading from the origin", "channel", channel, "release", version)
			return
		case <-alone.C:
			// The manager has had our report for a while: if its answer
			// now names no one, no one else has or fetches the release.
			d, err := a.opts.Client.Desired(ctx, a.opts.Node, 0, 0)
			if err != nil {
				continue
			}
			a.offerDesired(d)
			if !r.named(channel, version) {
				a.log().V(4).Info("no peers for the release; downloading from the origin", "channel", channel, "release", version)
				return
			}
		case <-tick.C:
		}
	}
}

// offerDesired takes a desired state fetched outside the long poll when
// it is newer than the one the agent has.
func (a *Agent) offerDesired(d release.Desired) {
	a.mu.Lock()
	newer := !a.have || d.Index > a.desired.Index
	if newer {
		a.desired, a.have = d, true
	}
	a.mu.Unlock()
	if newer {
		a.Poke()
	}
}
