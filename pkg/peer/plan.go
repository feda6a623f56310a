package peer

import (
	"github.com/hydra-csi/hydra/pkg/release"
)

// DefaultFanout is how many members one member passes a part on to.
const DefaultFanout = 3

// Plan is where one node takes the parts of one release from: the peers
// the manager named (release.PeerSet) seen from the node Self.
//
// With holders (nodes that have the release installed), parts are spread
// over them. Without, the swarm (every node of the zone fetching the
// release, in one order all of them are sent) shares the work so that
// the origin sends each part once: for part k the order is rotated by
// k mod N, the member at the front of the rotated order takes the part
// from the origin, and the member at rotated position i > 0 takes it from
// the one at (i-1)/Fanout, waiting for it there if it has not arrived
// yet. Every member is the root of 1/N of the parts and uploads about as
// much as it downloads; a part crosses at most log_Fanout(N) hops, and
// the hops overlap (a pipeline, not a tree of whole copies).
type Plan struct {
	Self    string
	Peers   release.PeerSet
	Fanout  int
	selfIdx int
}

// NewPlan returns self's plan for peers; nil when there is no peer to
// take anything from.
func NewPlan(self string, peers release.PeerSet) *Plan {
	p := &Plan{Self: self, Peers: peers, Fanout: DefaultFanout, selfIdx: -1}
	for i, m := range peers.Swarm {
		if m.Node == self {
			p.selfIdx = i
		}
	}
	others := 0
	for _, m := range peers.Swarm {
		if m.Node != self {
			others++
		}
	}
	for _, h := range peers.Holders {
		if h.Node != self {
			others++
		}
	}
	if others == 0 {
		return nil
	}
	return p
}

// Hop is one peer to try for a part. Wait says the peer is expected to get
// the part soon (it is this node's parent in the part's tree), so the
// request may wait for it; otherwise the peer answers at once.
type Hop struct {
	Peer release.Peer
	Wait bool
}

// Route returns the peers to try for part k, best first; the origin comes
// after them. avoid (nil: none) drops peers this node no longer trusts or
// reaches.
func (p *Plan) Route(k uint64, avoid func(node string) bool) []Hop {
	var hops []Hop
	seen := map[string]bool{p.Self: true}
	add := func(m release.Peer, wait bool) {
		if seen[m.Node] || (avoid != nil && avoid(m.Node)) {
			return
		}
		seen[m.Node] = true
		hops = append(hops, Hop{Peer: m, Wait: wait})
	}
	if h := p.Peers.Holders; len(h) > 0 {
		for i := range min(2, len(h)) {
			add(h[(k+uint64(i))%uint64(len(h))], false)
		}
	}
	n := len(p.Peers.Swarm)
	if p.selfIdx < 0 || n < 2 {
		if p.selfIdx < 0 {
			// Not a member (the manager does not count this node yet):
			// anyone of the swarm may have the part; ask two, no waiting.
			for i := range min(2, n) {
				add(p.Peers.Swarm[(k+uint64(i))%uint64(n)], false)
			}
		}
		return hops
	}
	rot := int(k % uint64(n)) //nolint:gosec // G115: less than n, an int
	at := func(pos int) release.Peer { return p.Peers.Swarm[(pos+rot)%n] }
	pos := (p.selfIdx - rot + n) % n
	fanout := max(p.Fanout, 1)
	if pos == 0 {
		// The part's root: it comes from the origin unless a member that
		// joined earlier has it already (this node is the late one).
		add(at(1), false)
		if n > 2 {
			add(at(2), false)
		}
		return hops
	}
	add(at((pos-1)/fanout), true)
	// Should the parent fail, the root has the part first.
	add(at(0), true)
	return hops
}
