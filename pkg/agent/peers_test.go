package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestPeerRoutes: the routes follow the desired state: a plan for a named
// release only with a usable secret, by identity, and none for releases
// the manager names no peers for or names unusable ones.
func TestPeerRoutes(t *testing.T) {
	id := release.Identity{Seq: 3, CreatedAt: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	good := release.PeerSet{Channel: "ch", Version: "v3", Identity: id,
		Swarm: []release.Peer{{Node: "a", Address: "10.0.0.1:7470"}, {Node: "b", Address: "10.0.0.2:7470"}}}
	bad := release.PeerSet{Channel: "ch", Version: "v4",
		Holders: []release.Peer{{Node: "a", Address: "no-port"}}}
	secret := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name       string
		d          release.Desired
		version    string
		id         release.Identity
		wantPlan   bool
		wantSecret bool
	}{
		{"named", release.Desired{Index: 1, PeerSecret: secret, Peers: []release.PeerSet{good}}, "v3", id, true, true},
		{"other publish", release.Desired{Index: 1, PeerSecret: secret, Peers: []release.PeerSet{good}}, "v3", release.Identity{Seq: 9}, false, true},
		{"not named", release.Desired{Index: 1, PeerSecret: secret, Peers: []release.PeerSet{good}}, "v5", id, false, true},
		{"no secret", release.Desired{Index: 1, Peers: []release.PeerSet{good}}, "v3", id, false, false},
		{"short secret", release.Desired{Index: 1, PeerSecret: "abcd", Peers: []release.PeerSet{good}}, "v3", id, false, false},
		{"invalid peers", release.Desired{Index: 1, PeerSecret: secret, Peers: []release.PeerSet{bad}}, "v4", release.Identity{}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewPeerRoutes("b", nil)
			a := &Agent{opts: Options{Node: "b"}, desired: tc.d, have: true}
			r.agent.Store(a)
			if got := r.Plan("ch", tc.version, tc.id) != nil; got != tc.wantPlan {
				t.Errorf("plan = %v, want %v", got, tc.wantPlan)
			}
			if got := r.Secret() != nil; got != tc.wantSecret {
				t.Errorf("secret = %v, want %v", got, tc.wantSecret)
			}
		})
	}
	// Unbound (no agent yet): nothing.
	if NewPeerRoutes("b", nil).Plan("ch", "v3", id) != nil {
		t.Error("routes without an agent gave a plan")
	}
}
