package agent

import (
	"slices"
	"sort"
	"testing"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestNeededReleases: eviction keeps what views of either tier show, are
// pinned to or still hold a tree of; every channel's pin; the head and
// the flips' targets of channels used (a view, a staged volume) or warmed
// on the node; in RAM the same for memory views and memory-warmed
// channels. The head of a channel nothing uses or warms may go.
func TestNeededReleases(t *testing.T) {
	d := release.Desired{
		Channels: []release.DesiredChannel{
			{Name: "used", Head: "v5", Pinned: "v1", NodeQuota: 1 << 30},
			{Name: "unused", Head: "v9", Pinned: "v2"},
			{Name: "staged", Head: "v3"},
			{Name: "warm", Head: "v7", Warm: release.MediumDisk},
			{Name: "warm-ram", Head: "v8", Warm: release.MediumMemory},
			{Name: "ram", Head: "v4"},
		},
		Views: []release.DesiredView{
			{VolumeID: "vol", PodUID: "p1", Channel: "used", Version: "v5"},
			{VolumeID: "mvol", PodUID: "p2", Channel: "ram", Version: "v4"},
		},
	}
	views := []cache.ViewInfo{
		{ViewRecord: cache.ViewRecord{VolumeID: "vol", PodUID: "p1", Channel: "used"}, Current: "v3", Releases: []string{"v2", "v3"}},
		{ViewRecord: cache.ViewRecord{VolumeID: "vol", PodUID: "p3", Channel: "used", Pinned: "v0"}, Current: "v0"},
	}
	memViews := []cache.ViewInfo{
		{ViewRecord: cache.ViewRecord{VolumeID: "mvol", PodUID: "p2", Channel: "ram", Medium: release.MediumMemory}, Current: "v3"},
	}
	n := neededReleases(d, views, memViews, map[string]bool{"staged": true})
	for _, tc := range []struct {
		tier string
		got  map[string]map[string]bool
		want map[string][]string
	}{
		{"disk", n.Disk, map[string][]string{
			"used":     {"v0", "v1", "v2", "v3", "v5"}, // pin of a view, the channel's pin, trees, current, head and target
			"unused":   {"v2"},                         // its pin only: nothing uses it
			"staged":   {"v3"},                         // a staged volume uses it
			"warm":     {"v7"},
			"warm-ram": {"v8"},
			"ram":      {"v3", "v4"}, // a memory view's release keeps its disk copy
		}},
		{"memory", n.Memory, map[string][]string{
			"warm-ram": {"v8"},
			"ram":      {"v3", "v4"},
		}},
	} {
		got := map[string][]string{}
		for ch, vs := range tc.got {
			for v := range vs {
				got[ch] = append(got[ch], v)
			}
			sort.Strings(got[ch])
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: needed %v, want %v", tc.tier, got, tc.want)
		}
		for ch, want := range tc.want {
			if !slices.Equal(got[ch], want) {
				t.Errorf("%s: needed of %s %v, want %v", tc.tier, ch, got[ch], want)
			}
		}
	}
	if len(n.Quotas) != 1 || n.Quotas["used"] != 1<<30 {
		t.Errorf("quotas %v, want used: 1 GiB only", n.Quotas)
	}
}

// TestNeededUnknownBeforeDesired: before the first desired state the node
// cannot tell a head from an old release, so Needed fails and nothing is
// evicted.
func TestNeededUnknownBeforeDesired(t *testing.T) {
	cl, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: source.NewReaderMux(source.FetchOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Node: "node-a", Client: cl, Cache: c, Views: cache.NewViews(c.Layout())})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Needed(); err == nil {
		t.Fatal("Needed answered before any desired state")
	}
	a.mu.Lock()
	a.desired, a.have = release.Desired{Channels: []release.DesiredChannel{{Name: "c", Head: "v1", Warm: release.MediumDisk}}}, true
	a.mu.Unlock()
	n, err := a.Needed()
	if err != nil || !n.Disk["c"]["v1"] {
		t.Fatalf("Needed after a desired state = %v, %v; want c/v1 kept", n, err)
	}
}
