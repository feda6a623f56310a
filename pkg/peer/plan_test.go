package peer

import (
	"fmt"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func swarm(n int) []release.Peer {
	out := make([]release.Peer, n)
	for i := range out {
		out[i] = release.Peer{Node: fmt.Sprintf("n%d", i), Address: fmt.Sprintf("10.0.0.%d:7470", i+1)}
	}
	return out
}

// TestPlanTrees: for every part, the swarm forms one tree: exactly one
// member (the root) takes the part from the origin, every other member's
// first hop is a member that is closer to the root, and across parts every
// member serves about as much as the others.
func TestPlanTrees(t *testing.T) {
	for _, n := range []int{2, 3, 6, 8, 64} {
		members := swarm(n)
		plans := make(map[string]*Plan, n)
		for _, m := range members {
			plans[m.Node] = NewPlan(m.Node, release.PeerSet{Swarm: members})
		}
		served := map[string]int{}
		const parts = 960
		for k := range uint64(parts) {
			roots := 0
			parent := map[string]string{}
			for _, m := range members {
				hops := plans[m.Node].Route(k, nil)
				if len(hops) == 0 || !hops[0].Wait {
					roots++
					continue
				}
				parent[m.Node] = hops[0].Peer.Node
				served[hops[0].Peer.Node]++
			}
			if roots != 1 {
				t.Fatalf("n=%d part %d: %d members take it from the origin, want 1", n, k, roots)
			}
			for _, m := range members {
				seen := map[string]bool{}
				for at := m.Node; parent[at] != ""; at = parent[at] {
					if seen[at] {
						t.Fatalf("n=%d part %d: a cycle through %s", n, k, at)
					}
					seen[at] = true
				}
			}
		}
		// Every part is passed on n-1 times; spread over the members.
		mean := float64(parts*(n-1)) / float64(n)
		for _, m := range members {
			if got := float64(served[m.Node]); got < mean*0.5 || got > mean*1.5 {
				t.Errorf("n=%d: %s serves %v parts, the mean is %v", n, m.Node, got, mean)
			}
		}
	}
}

// TestPlanHoldersAndAvoid: holders come first, the node itself never
// appears, avoided peers are dropped, and a node with nothing to take
// from gets no plan.
func TestPlanHoldersAndAvoid(t *testing.T) {
	holders := []release.Peer{{Node: "h1", Address: "10.0.1.1:7470"}, {Node: "h2", Address: "10.0.1.2:7470"}}
	p := NewPlan("n0", release.PeerSet{Holders: holders, Swarm: swarm(3)})
	hops := p.Route(0, nil)
	if len(hops) < 2 || hops[0].Peer.Node != "h1" || hops[1].Peer.Node != "h2" || hops[0].Wait {
		t.Fatalf("part 0: hops %+v, want the holders first, without waiting", hops)
	}
	if hops := p.Route(1, nil); hops[0].Peer.Node != "h2" {
		t.Errorf("part 1 starts at %s, want the holders rotated (h2)", hops[0].Peer.Node)
	}
	for k := range uint64(10) {
		for _, h := range p.Route(k, func(n string) bool { return n == "h1" || n == "n1" }) {
			if h.Peer.Node == "n0" || h.Peer.Node == "h1" || h.Peer.Node == "n1" {
				t.Fatalf("part %d: hop to %s (self or avoided)", k, h.Peer.Node)
			}
		}
	}
	if NewPlan("n0", release.PeerSet{Swarm: swarm(1)}) != nil {
		t.Error("a swarm of the node alone gave a plan")
	}
	// Not counted in the swarm yet: ask members, never wait.
	q := NewPlan("late", release.PeerSet{Swarm: swarm(4)})
	for _, h := range q.Route(5, nil) {
		if h.Wait {
			t.Errorf("a node outside the swarm waits on %s", h.Peer.Node)
		}
	}
}
