package manager

import (
	"encoding/binary"
	"slices"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Peer distribution (docs/manager.md, "Peer distribution"): in the desired
// state of each node that serves peers, the manager names, per release the
// node must fetch, the nodes of its zone that hold it (Holders) and those
// fetching it with it (Swarm). Only membership counts — who reports what
// ready or wanted, at which address, in which zone — never the bytes done,
// so the frequent progress reports change no node's answer.
const (
	// maxHolders bounds the holders named for one release.
	maxHolders = 8
	// swarmGroup is the size of the consecutive groups a large swarm is
	// cut into; a node is sent only its own group.
	swarmGroup = 64
)

// releaseKey names a release within one refresh, where each name has
// one identity.
type releaseKey struct{ channel, version string }

// wantedRelease is a release a node must fetch, with the identity the
// desired state names for it.
type wantedRelease struct {
	key releaseKey
	id  release.Identity
}

// peerMember is a node that serves peers and whose report is fresh: the
// only nodes named as peers or sent any.
type peerMember struct {
	peer  release.Peer
	zone  string
	wants []wantedRelease
	ready map[releaseKey]bool
}

// peerInput is what planPeers depends on, all of it read once per refresh.
type peerInput struct {
	nodes []release.NodeStatus
	// fresh says whether a report counts (not stale).
	fresh func(release.NodeStatus) bool
	// zone is a node's zone: its Kubernetes Node's label, else the zone
	// it reports.
	zone     func(release.NodeStatus) string
	channels []release.DesiredChannel
	// views are the flips planned per node.
	views map[string][]release.DesiredView
	// warm are, per node, the channels it is warm for (warmChannels):
	// it fetches their heads with no view.
	warm map[string]map[string]string
	// lookup is a release's identity and whether it still exists.
	lookup func(channel, version string) (release.Identity, bool)
}

// peerZone is one zone's holders and ordered swarms, per release.
type peerZone struct {
	holders map[releaseKey][]release.Peer
	swarms  map[releaseKey]*swarm
}

// swarm is the members of a zone fetching one release, in the one order
// every member is sent, with each member's position.
type swarm struct {
	id      release.Identity
	members []release.Peer
	at      map[string]int
}

// planPeers names, per node, the peers of every release it must fetch.
// The zone → release → swarm map is built once for all nodes; a node
// whose answer would name no peer but itself gets no entry for the
// release.
func planPeers(in peerInput) map[string][]release.PeerSet {
	members := in.members()
	zones := map[string]*peerZone{}
	for _, n := range members {
		z := zones[n.zone]
		if z == nil {
			z = &peerZone{holders: map[releaseKey][]release.Peer{}, swarms: map[releaseKey]*swarm{}}
			zones[n.zone] = z
		}
		for k := range n.ready {
			z.holders[k] = append(z.holders[k], n.peer)
		}
		for _, w := range n.wants {
			s := z.swarms[w.key]
			if s == nil {
				s = &swarm{id: w.id}
				z.swarms[w.key] = s
			}
			s.members = append(s.members, n.peer)
		}
	}
	for _, z := range zones {
		for k, s := range z.swarms {
			s.order(k)
		}
	}
	out := map[string][]release.PeerSet{}
	for _, n := range members {
		z := zones[n.zone]
		for _, w := range n.wants {
			rp := release.PeerSet{Channel: w.key.channel, Version: w.key.version, Identity: w.id,
				Holders: pickHolders(n.peer.Node, z.holders[w.key]), Swarm: z.swarms[w.key].groupOf(n.peer.Node)}
			if len(rp.Holders) == 0 && len(rp.Swarm) <= 1 {
				continue
			}
			out[n.peer.Node] = append(out[n.peer.Node], rp)
		}
	}
	return out
}

// members are the nodes that serve peers and reported lately, with what
// each must fetch and holds ready.
func (in peerInput) members() []peerMember {
	heads := make(map[string]release.DesiredChannel, len(in.channels))
	for _, ch := range in.channels {
		heads[ch.Name] = ch
	}
	var out []peerMember
	for _, n := range in.nodes {
		if n.Peer == nil || !in.fresh(n) {
			continue
		}
		m := peerMember{peer: release.Peer{Node: n.Node, Address: n.Peer.Address}, zone: in.zone(n), ready: map[releaseKey]bool{}}
		for _, p := range n.Releases {
			if p.State == release.StateReady {
				m.ready[releaseKey{p.Channel, p.Version}] = true
			}
		}
		m.wants = in.wanted(n, heads, m.ready)
		out = append(out, m)
	}
	return out
}

// wanted lists, in a stable order, the releases n must fetch and does not
// hold ready: the head of each channel it has unpinned views of, the
// release of each pinned view, each flip planned for it, the head of each
// channel it is warm for, and each release it reports pending or
// downloading that still exists.
func (in peerInput) wanted(n release.NodeStatus, heads map[string]release.DesiredChannel, ready map[releaseKey]bool) []wantedRelease {
	var out []wantedRelease
	seen := map[releaseKey]bool{}
	add := func(channel, version string, id release.Identity) {
		k := releaseKey{channel, version}
		if version == "" || seen[k] || ready[k] {
			return
		}
		seen[k] = true
		out = append(out, wantedRelease{key: k, id: id})
	}
	for _, v := range n.Views {
		if v.Pinned != "" {
			id, _ := in.lookup(v.Channel, v.Pinned)
			add(v.Channel, v.Pinned, id)
		} else if ch, ok := heads[v.Channel]; ok {
			add(ch.Name, ch.Head, ch.HeadIdentity)
		}
	}
	for _, dv := range in.views[n.Node] {
		add(dv.Channel, dv.Version, dv.ReleaseIdentity)
	}
	for _, ch := range in.channels {
		if _, ok := in.warm[n.Node][ch.Name]; ok {
			add(ch.Name, ch.Head, ch.HeadIdentity)
		}
	}
	for _, p := range n.Releases {
		if p.State != release.StatePending && p.State != release.StateDownloading {
			continue
		}
		if id, ok := in.lookup(p.Channel, p.Version); ok {
			add(p.Channel, p.Version, id)
		}
	}
	return out
}

// order sorts the swarm by a hash of the release and each member, the
// same order for every member and a different one per release, so that
// not every swarm starts with the same node.
func (s *swarm) order(k releaseKey) {
	keys := make(map[string]uint64, len(s.members))
	for _, p := range s.members {
		keys[p.Node] = swarmHash(k, s.id.Seq, p.Node)
	}
	slices.SortFunc(s.members, func(a, b release.Peer) int { return compareHashed(keys[a.Node], keys[b.Node], a.Node, b.Node) })
	s.at = make(map[string]int, len(s.members))
	for i, p := range s.members {
		s.at[p.Node] = i
	}
}

// groupOf is node's group of at most swarmGroup consecutive members. The
// members of a group share the slice, which no one changes once planned
// (with 1,000 nodes, copies would be most of a refresh's garbage).
func (s *swarm) groupOf(node string) []release.Peer {
	if s == nil {
		return nil
	}
	i, ok := s.at[node]
	if !ok {
		return nil
	}
	start := i / swarmGroup * swarmGroup
	end := min(start+swarmGroup, len(s.members))
	return s.members[start:end:end]
}

// pickHolders returns up to maxHolders of holders but node itself, in an
// order particular to node (a hash of node and each holder), so that the
// nodes fetching a release do not all start on the same holder.
func pickHolders(node string, holders []release.Peer) []release.Peer {
	if len(holders) == 0 {
		return nil
	}
	type ranked struct {
		p   release.Peer
		key uint64
	}
	rs := make([]ranked, 0, len(holders))
	for _, h := range holders {
		if h.Node != node {
			rs = append(rs, ranked{h, pairHash(node, h.Node)})
		}
	}
	slices.SortFunc(rs, func(a, b ranked) int { return compareHashed(a.key, b.key, a.p.Node, b.p.Node) })
	out := make([]release.Peer, 0, min(len(rs), maxHolders))
	for _, r := range rs[:min(len(rs), maxHolders)] {
		out = append(out, r.p)
	}
	return out
}

// compareHashed orders by hash, then by name should two hashes collide.
func compareHashed(ha, hb uint64, a, b string) int {
	switch {
	case ha < hb:
		return -1
	case ha > hb:
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FNV-1a (64 bits) over the bytes of parts, each followed by a zero
// byte so that ("ab", "c") and ("a", "bc") differ.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := range len(s) {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h * fnvPrime // the separator: h ^= 0, then the multiply
}

func pairHash(a, b string) uint64 {
	return mix64(fnvString(fnvString(fnvOffset, a), b))
}

func swarmHash(k releaseKey, seq uint64, node string) uint64 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h := fnvString(fnvString(fnvOffset, k.channel), k.version)
	return mix64(fnvString(fnvString(h, string(b[:])), node))
}

// mix64 spreads FNV's output over all bits (the finalizer of
// SplitMix64): names that differ only in their last character, as node
// names do, would otherwise sort close together.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
