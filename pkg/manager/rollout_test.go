package manager

import (
	"fmt"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestPlanFlips(t *testing.T) {
	ch := func(name, head string, maxUnavailable int, paused bool) release.Channel {
		return release.Channel{Name: name, Head: head, Paused: paused,
			Config: release.Config{Rollout: release.RolloutPolicy{MaxUnavailable: maxUnavailable}}}
	}
	view := func(vol, pod, channel, current, pinned string) release.View {
		return release.View{VolumeID: vol, PodUID: pod, Channel: channel, Current: current, Pinned: pinned}
	}
	ready := func(channel, version string) release.Progress {
		return release.Progress{Channel: channel, Version: version, State: release.StateReady}
	}
	nodes := []release.NodeStatus{
		{Node: "a", Releases: []release.Progress{ready("c", "v2")}, Views: []release.View{
			view("vol", "p1", "c", "v1", ""), view("vol", "p2", "c", "v1", ""), view("pin", "p3", "c", "v1", "v1"),
		}},
		{Node: "b", Releases: []release.Progress{{Channel: "c", Version: "v2", State: release.StateDownloading}}, Views: []release.View{
			view("vol", "p4", "c", "v1", ""),
		}},
		{Node: "c", Releases: []release.Progress{ready("c", "v2")}, Views: []release.View{
			view("vol", "p5", "c", "v2", ""), view("vol", "p6", "c", "v1", ""),
		}},
	}
	cases := []struct {
		name string
		chs  []release.Channel
		want string
	}{
		{"one at a time, first ready view", []release.Channel{ch("c", "v2", 1, false)}, "map[a:[{vol p1 c v2}]]"},
		{"two at a time", []release.Channel{ch("c", "v2", 2, false)}, "map[a:[{vol p1 c v2} {vol p2 c v2}]]"},
		// b is not ready and p5 is there already; pinned p3 never moves.
		{"all that may move", []release.Channel{ch("c", "v2", 10, false)}, "map[a:[{vol p1 c v2} {vol p2 c v2}] c:[{vol p6 c v2}]]"},
		{"paused channel", []release.Channel{ch("c", "v2", 10, true)}, "map[]"},
		{"no head", []release.Channel{ch("c", "", 10, false)}, "map[]"},
		{"back to v1 waits for v1 on the node", []release.Channel{ch("c", "v1", 10, false)}, "map[]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := fmt.Sprint(planFlips(tc.chs, nodes)); got != tc.want {
				t.Fatalf("planFlips = %s, want %s", got, tc.want)
			}
		})
	}
}
