package manager

import (
	"fmt"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// BenchmarkPlanPeers is the peer naming of one refresh of the desired
// state for a fleet of 1,000 peer-serving nodes in 3 zones during a
// rollout: two channels, a third of the nodes holding each head, the
// others fetching it.
//
//	go test -run '^$' -bench PlanPeers -benchtime 20x ./pkg/manager/
func BenchmarkPlanPeers(b *testing.B) {
	const nodes = 1000
	chans := []release.DesiredChannel{{Name: "a", Head: "v2", HeadIdentity: release.Identity{Seq: 2}},
		{Name: "b", Head: "v9", HeadIdentity: release.Identity{Seq: 9}}}
	var reports []release.NodeStatus
	for i := range nodes {
		n := release.NodeStatus{Node: fmt.Sprintf("node-%04d", i),
			Peer: &release.PeerInfo{Address: fmt.Sprintf("10.0.%d.%d:7470", i/250, i%250), Zone: fmt.Sprintf("zone-%d", i%3)}}
		for _, ch := range chans {
			n.Views = append(n.Views, release.View{VolumeID: "pvc-" + ch.Name, Channel: ch.Name, Current: "v1"})
			state := release.StateDownloading
			if i%3 == 0 {
				state = release.StateReady
			}
			n.Releases = append(n.Releases, release.Progress{Channel: ch.Name, Version: ch.Head, State: state, BytesDone: int64(i)})
		}
		reports = append(reports, n)
	}
	in := peerInput{nodes: reports, fresh: func(release.NodeStatus) bool { return true },
		zone: func(n release.NodeStatus) string { return n.Peer.Zone }, channels: chans,
		lookup: func(string, string) (release.Identity, bool) { return release.Identity{Seq: 1}, true }}
	b.ResetTimer()
	for b.Loop() {
		if got := planPeers(in); len(got) != nodes*2/3 {
			b.Fatalf("%d nodes named peers, want %d", len(got), nodes*2/3)
		}
	}
}
