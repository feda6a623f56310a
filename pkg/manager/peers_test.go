package manager_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
)

// peerFleet reports nodes to a real manager, as node agents would.
type peerFleet struct {
	t *testing.T
	m *manager.Manager
}

// node is one node's report: zone "-" means it does not serve peers;
// ready and downloading name versions of channel c; view is "" (no
// view), "head" (an unpinned view of c) or a version it is pinned to.
type node struct {
	name, zone, view   string
	ready, downloading []string
	bytesDone          int64
}

func (f peerFleet) report(n node) {
	f.t.Helper()
	st := release.NodeStatus{Node: n.name}
	if n.zone != "-" {
		st.Peer = &release.PeerInfo{Address: n.name + ".test:7470", Zone: n.zone}
	}
	for _, v := range n.ready {
		st.Releases = append(st.Releases, release.Progress{Channel: "c", Version: v, State: release.StateReady, BytesDone: 10, BytesTotal: 10})
	}
	for _, v := range n.downloading {
		st.Releases = append(st.Releases, release.Progress{Channel: "c", Version: v, State: release.StateDownloading,
			BytesDone: n.bytesDone, BytesTotal: 10, BytesFromPeers: n.bytesDone})
	}
	switch n.view {
	case "":
	case "head":
		st.Views = []release.View{{VolumeID: "pvc-" + n.name, Channel: "c", Current: "v0"}}
	default:
		st.Views = []release.View{{VolumeID: "pvc-" + n.name, Channel: "c", Current: n.view, Pinned: n.view}}
	}
	if err := f.m.ReportStatus(context.Background(), n.name, st); err != nil {
		f.t.Fatal(err)
	}
}

// desired is a node's answer now (index 0 answers at once).
func (f peerFleet) desired(name string) release.Desired {
	f.t.Helper()
	d, err := f.m.Desired(context.Background(), name, 0, time.Second)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// peersOf is what name is told of version's peers: nil when nothing.
func peersOf(d release.Desired, version string) *release.PeerSet {
	for i, rp := range d.Peers {
		if rp.Channel == "c" && rp.Version == version {
			return &d.Peers[i]
		}
	}
	return nil
}

func names(ps []release.Peer) []string {
	out := []string{}
	for _, p := range ps {
		out = append(out, p.Node)
	}
	return out
}

// TestPeersNamed: a node that serves peers is told, per release it must
// fetch, the holders of its zone and the swarm of its zone fetching it
// with it; holders and fetchers of the other zone, stale reports and
// nodes that do not serve peers are never named, and a node that does
// not serve peers gets neither peers nor the secret.
func TestPeersNamed(t *testing.T) {
	m, _, clk := newManager(t)
	f := peerFleet{t, m}
	mustCreate(t, m, "c", release.Config{})
	mustPublish(t, m, "c", "v0", true)
	mustPublish(t, m, "c", "v1", true)
	// Stale before the others report: it wants v1 in zone a.
	f.report(node{name: "old-a", zone: "a", view: "head"})
	clk.Step(manager.DefaultNodeReportTTL + time.Second)
	for _, n := range []node{
		{name: "hold-a1", zone: "a", view: "head", ready: []string{"v0", "v1"}},
		{name: "hold-a2", zone: "a", view: "head", ready: []string{"v1"}},
		{name: "want-a1", zone: "a", view: "head"},
		{name: "want-a2", zone: "a", view: "head", downloading: []string{"v1"}},
		{name: "want-a3", zone: "a", downloading: []string{"v1", "gone"}},
		{name: "pin-a", zone: "a", view: "v0"},
		{name: "hold-b", zone: "b", view: "head", ready: []string{"v1"}},
		{name: "want-b", zone: "b", view: "head"},
		{name: "plain-a", zone: "-", view: "head"},
		{name: "plain-hold", zone: "-", ready: []string{"v1"}},
	} {
		f.report(n)
	}
	pollUntil(t, m, "want-b", func(d release.Desired) bool { return len(d.Peers) > 0 })

	swarmA := []string{"want-a1", "want-a2", "want-a3"}
	var order []string
	for _, name := range swarmA {
		d := f.desired(name)
		rp := peersOf(d, "v1")
		if rp == nil || len(d.Peers) != 1 {
			t.Fatalf("%s: peers %+v, want only v1's", name, d.Peers)
		}
		if h := names(rp.Holders); len(h) != 2 || !slices.Contains(h, "hold-a1") || !slices.Contains(h, "hold-a2") {
			t.Errorf("%s: holders %v, want hold-a1 and hold-a2", name, h)
		}
		sw := names(rp.Swarm)
		if order == nil {
			order = sw
		}
		if !slices.Equal(sw, order) || len(sw) != 3 || !slices.Contains(sw, name) {
			t.Errorf("%s: swarm %v, want the same order of %v for every member", name, sw, swarmA)
		}
		sum, err := m.GetRelease(context.Background(), "c", "v1")
		if err != nil || !sum.Identity().Matches(rp.Identity) || rp.Identity.IsZero() {
			t.Errorf("%s: identity %s, want v1's %s (%v)", name, rp.Identity, sum.Identity(), err)
		}
		if len(d.PeerSecret) != 64 {
			t.Errorf("%s: peer secret %q, want 32 bytes in hex", name, d.PeerSecret)
		}
		if rp.Holders[0].Address != rp.Holders[0].Node+".test:7470" {
			t.Errorf("%s: holder %+v, want the address it reports", name, rp.Holders[0])
		}
	}
	for _, tc := range []struct {
		node, version   string
		holders, swarm  []string
		noPeers, secret bool
	}{
		// The pinned release, held by one node of the zone.
		{node: "pin-a", version: "v0", holders: []string{"hold-a1"}, swarm: []string{"pin-a"}, secret: true},
		// Holders only: the swarm of one is named with them.
		{node: "want-b", version: "v1", holders: []string{"hold-b"}, swarm: []string{"want-b"}, secret: true},
		// Holding what it wants: nothing to fetch.
		{node: "hold-a1", noPeers: true, secret: true},
		{node: "plain-a", noPeers: true},
		{node: "old-a", noPeers: true, secret: true},
	} {
		d := f.desired(tc.node)
		if (d.PeerSecret != "") != tc.secret {
			t.Errorf("%s: peer secret %q, want one: %t", tc.node, d.PeerSecret, tc.secret)
		}
		if tc.noPeers {
			if len(d.Peers) != 0 {
				t.Errorf("%s: peers %+v, want none", tc.node, d.Peers)
			}
			continue
		}
		rp := peersOf(d, tc.version)
		if rp == nil || !slices.Equal(names(rp.Holders), tc.holders) || !slices.Equal(names(rp.Swarm), tc.swarm) {
			t.Errorf("%s: peers %+v, want %s from holders %v, swarm %v", tc.node, d.Peers, tc.version, tc.holders, tc.swarm)
		}
	}
	if s1, s2 := f.desired("want-a1").PeerSecret, f.desired("hold-b").PeerSecret; s1 != s2 {
		t.Errorf("two nodes got different secrets: %s and %s", s1, s2)
	}
}

// TestPeersSpreadAndGrouped: in a zone of many holders, the nodes that
// fetch do not all start on the same one and get at most 8; a swarm of
// more than 64 is cut into consecutive groups of 64, each member sent its
// own group, the same list for every member of a group.
func TestPeersSpreadAndGrouped(t *testing.T) {
	m, _, _ := newManager(t)
	f := peerFleet{t, m}
	mustCreate(t, m, "c", release.Config{})
	mustPublish(t, m, "c", "v1", true)
	const holders, fetchers = 20, 130
	for i := range holders {
		f.report(node{name: fmt.Sprintf("hold-%02d", i), zone: "z", view: "head", ready: []string{"v1"}})
	}
	for i := range fetchers {
		f.report(node{name: fmt.Sprintf("want-%03d", i), zone: "z", view: "head"})
	}
	last := fmt.Sprintf("want-%03d", fetchers-1)
	pollUntil(t, m, last, func(d release.Desired) bool { return len(d.Peers) > 0 })

	firsts := map[string]int{}
	groups := map[string][]string{} // by first member
	for i := range fetchers {
		name := fmt.Sprintf("want-%03d", i)
		rp := peersOf(f.desired(name), "v1")
		if rp == nil || len(rp.Holders) != 8 {
			t.Fatalf("%s: %+v, want 8 holders", name, rp)
		}
		firsts[rp.Holders[0].Node]++
		sw := names(rp.Swarm)
		if !slices.Contains(sw, name) {
			t.Fatalf("%s: swarm %v without it", name, sw)
		}
		if g, ok := groups[sw[0]]; ok && !slices.Equal(g, sw) {
			t.Fatalf("%s: swarm %v, another member of its group got %v", name, sw, g)
		}
		groups[sw[0]] = sw
	}
	// 130 nodes spread over 20 holders by a hash: no holder is first for
	// more than a third of them.
	for h, n := range firsts {
		if n > fetchers/3 {
			t.Errorf("holder %s is the first of %d of %d nodes: %v", h, n, fetchers, firsts)
		}
	}
	var sizes []int
	all := map[string]bool{}
	for _, g := range groups {
		sizes = append(sizes, len(g))
		for _, n := range g {
			if all[n] {
				t.Errorf("%s is in two groups", n)
			}
			all[n] = true
		}
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{2, 64, 64}) || len(all) != fetchers {
		t.Errorf("groups of sizes %v covering %d nodes, want 64, 64 and 2 covering %d", sizes, len(all), fetchers)
	}
}

// TestPeersIndex: a report that only moves bytes leaves the index of
// every node's answer as it was (no long-poll wakes); a node joining the
// swarm changes the answers of its zone's members, and only theirs.
func TestPeersIndex(t *testing.T) {
	m, _, _ := newManager(t)
	f := peerFleet{t, m}
	mustCreate(t, m, "c", release.Config{})
	mustPublish(t, m, "c", "v1", true)
	a1 := node{name: "want-a1", zone: "a", view: "head", downloading: []string{"v1"}, bytesDone: 1}
	for _, n := range []node{a1, {name: "want-a2", zone: "a", view: "head"}, {name: "want-b1", zone: "b", view: "head"}} {
		f.report(n)
	}
	before := pollUntil(t, m, "want-a1", func(d release.Desired) bool {
		rp := peersOf(d, "v1")
		return rp != nil && len(rp.Swarm) == 2
	})
	a2 := f.desired("want-a2")

	// Progress only, then a change in zone b that shows the refresh
	// has read the progress report.
	a1.bytesDone = 7
	f.report(a1)
	f.report(node{name: "want-b2", zone: "b", view: "head"})
	pollUntil(t, m, "want-b1", func(d release.Desired) bool {
		rp := peersOf(d, "v1")
		return rp != nil && len(rp.Swarm) == 2
	})
	if d := f.desired("want-a1"); d.Index != before.Index {
		t.Fatalf("want-a1's index moved from %d to %d on a progress report", before.Index, d.Index)
	}
	if d := f.desired("want-a2"); d.Index != a2.Index {
		t.Fatalf("want-a2's index moved from %d to %d by a change in another zone", a2.Index, d.Index)
	}

	// Membership: a third node of zone a wakes want-a1's long-poll.
	got := pollAsync(t, m, "want-a1", before.Index)
	f.report(node{name: "want-a3", zone: "a", view: "head"})
	select {
	case d := <-got:
		if rp := peersOf(d, "v1"); d.Index == before.Index || rp == nil || !slices.Contains(names(rp.Swarm), "want-a3") {
			t.Fatalf("want-a1 woken with index %d (was %d), peers %+v; want want-a3 in its swarm", d.Index, before.Index, d.Peers)
		}
	case <-time.After(time.Minute):
		t.Fatal("want-a1's long-poll not woken by a node joining its swarm")
	}
}

// TestPeerGauges: the manager's gauges add up what the fresh reports say
// of peer distribution: the nodes serving peers, the bytes fetched from
// peers and from the origin, and those served.
func TestPeerGauges(t *testing.T) {
	tm := managertest.Start(t, managertest.Options{})
	mustCreate(t, tm.Manager, "c", release.Config{})
	reports := []release.NodeStatus{
		{Node: "node-a", Peer: &release.PeerInfo{Address: "10.0.0.1:7470"}, PeerServedBytes: 70, Releases: []release.Progress{
			{Channel: "c", Version: "v1", State: release.StateReady, BytesFromPeers: 100, BytesFromOrigin: 50, BytesServed: 70}}},
		{Node: "node-b", Peer: &release.PeerInfo{Address: "10.0.0.2:7470"}, Releases: []release.Progress{
			{Channel: "c", Version: "v1", State: release.StateDownloading, BytesFromPeers: 10}}},
		{Node: "node-c", Releases: []release.Progress{{Channel: "c", Version: "v1", State: release.StateDownloading, BytesFromOrigin: 5}}},
	}
	for _, st := range reports {
		if err := tm.ReportStatus(context.Background(), st.Node, st); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{
		"hydra_manager_peer_nodes":                          2,
		`hydra_manager_node_fetched_bytes{source="peers"}`:  110,
		`hydra_manager_node_fetched_bytes{source="origin"}`: 55,
		"hydra_manager_node_peer_served_bytes":              70,
	}
	deadline := time.Now().Add(30 * time.Second)
	for name, v := range want {
		for got := gauge(t, tm.URL, name); got != v; got = gauge(t, tm.URL, name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v", name, got, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
