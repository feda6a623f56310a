package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestChannelWarmFlags: --warm, --warm-medium, --no-warm and --node-quota
// set the channel's warm selector and node quota on create and set; a new
// selector replaces the old one whole; channel show prints both; bad
// values are refused naming the flag, before anything is sent.
func TestChannelWarmFlags(t *testing.T) {
	h := newHarness(t)
	h.ok("channel", "create", "idx", "--warm", "pool=search", "--node-quota", "200Gi")
	steps := []struct {
		args  []string
		warm  *release.WarmConfig
		quota int64
	}{
		{nil, &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}}, 200 << 30},
		{[]string{"--warm", "pool=gpu,topology.kubernetes.io/zone=a", "--warm-medium", "memory"},
			&release.WarmConfig{NodeSelector: map[string]string{"pool": "gpu", "topology.kubernetes.io/zone": "a"}, Medium: release.MediumMemory}, 200 << 30},
		{[]string{"--warm", "pool=search"}, &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}, Medium: release.MediumMemory}, 200 << 30},
		{[]string{"--warm-medium", "disk", "--node-quota", "0"}, &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}, Medium: release.MediumDisk}, 0},
		{[]string{"--warm", "all"}, &release.WarmConfig{NodeSelector: map[string]string{}, Medium: release.MediumDisk}, 0},
		{[]string{"--no-warm", "--node-quota", "1M"}, nil, 1e6},
		{[]string{"--warm", "all"}, &release.WarmConfig{NodeSelector: map[string]string{}}, 1e6},
	}
	for _, s := range steps {
		if s.args != nil {
			h.ok(append([]string{"channel", "set", "idx"}, s.args...)...)
		}
		got := h.channel("idx").Config
		if !sameWarm(got.Warm, s.warm) || got.NodeQuota != s.quota {
			t.Fatalf("after channel set %v: warm %s, quota %d; want %s, %d", s.args, got.Warm, got.NodeQuota, s.warm, s.quota)
		}
	}
	h.ok("channel", "set", "idx", "--warm", "pool=search", "--warm-medium", "memory")
	wantText(t, h.ok("channel", "show", "idx"), "Warm:", "pool=search (memory)", "Node quota:", "976.6 KiB")
	wantText(t, func() string { h.ok("channel", "create", "cold"); return h.ok("channel", "show", "cold") }(), "Warm:          no", "Node quota:    none")

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"channel", "set", "idx", "--warm", "pool"}, []string{"--warm", `"pool" is not key=value`}},
		{[]string{"channel", "set", "idx", "--warm", "pool=a b"}, []string{"--warm[pool]"}},
		{[]string{"channel", "set", "idx", "--warm", "pool=a,pool=b"}, []string{"given twice"}},
		{[]string{"channel", "set", "idx", "--warm-medium", "tape"}, []string{"warm.medium", "tape"}},
		{[]string{"channel", "set", "idx", "--no-warm", "--warm", "pool=a"}, []string{"--no-warm"}},
		{[]string{"channel", "set", "cold", "--warm-medium", "memory"}, []string{"channel cold is not warm", "--warm"}},
		{[]string{"channel", "set", "idx", "--node-quota", "-1"}, []string{"--node-quota", "want 0 or a size"}},
		{[]string{"channel", "set", "idx", "--node-quota", "lots"}, []string{"--node-quota", `"lots"`}},
		{[]string{"channel", "create", "x", "--warm-medium", "memory"}, []string{"--warm-medium needs --warm"}},
		{[]string{"channel", "create", "x", "--no-warm"}, []string{"unknown flag: --no-warm"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) { h.sub(t).fails(tc.args, tc.want...) })
	}
	if got := h.channel("idx").Config; got.Warm.String() != "pool=search (memory)" || got.NodeQuota != 1e6 {
		t.Errorf("refused commands changed idx: warm %s, quota %d", got.Warm, got.NodeQuota)
	}
}

func sameWarm(a, b *release.WarmConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.MediumOrDefault() == b.MediumOrDefault() && maps.Equal(a.NodeSelector, b.NodeSelector)
}

// TestStatusWarmNodes: status lists a warm channel's selector and the
// nodes whose reported labels match, with whether each has the head.
func TestStatusWarmNodes(t *testing.T) {
	h := newHarness(t)
	h.ok("channel", "create", "idx", "--warm", "pool=search")
	h.publishStub("idx", "v1", false)
	for node, pool := range map[string]string{"search-1": "search", "search-2": "search", "batch-1": "batch"} {
		st := release.NodeStatus{Node: node, Labels: map[string]string{"pool": pool}}
		if node == "search-1" {
			st.Releases = []release.Progress{{Channel: "idx", Version: "v1", State: release.StateReady, BytesDone: 1, BytesTotal: 1}}
		}
		if err := h.node.ReportStatus(h.t.Context(), st); err != nil {
			t.Fatal(err)
		}
	}
	out := h.ok("status", "idx")
	wantText(t, out, "WARM on pool=search (disk)", "HEAD v1", "search-1", "ready", "search-2", "not yet")
	if strings.Contains(out, "batch-1") {
		t.Errorf("status lists batch-1, which does not match:\n%s", out)
	}
	var st api.ChannelStatus
	decodeJSON(t, h.ok("-o", "json", "status", "idx"), &st)
	want := []api.WarmNode{{Node: "search-1", Medium: "disk", HeadReady: true}, {Node: "search-2", Medium: "disk"}}
	if len(st.Warm) != 2 || st.Warm[0] != want[0] || st.Warm[1] != want[1] {
		t.Errorf("status -o json warm = %+v, want %+v", st.Warm, want)
	}
	wantText(t, h.ok("channel", "show", "idx"), "WARM on pool=search (disk)", "search-2")
}
