package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestAgentWarmChannel: a node whose reported labels match a channel's
// warm selector fetches the head with no view, on the warm medium (on
// disk when the node has no RAM tier), and fetches the next head as soon
// as it is published; staging a volume of the channel afterwards reads
// nothing from the origin.
func TestAgentWarmChannel(t *testing.T) {
	for _, tc := range []struct {
		name, medium string
		ram, inRAM   bool
	}{
		{"disk", release.MediumDisk, true, false},
		{"memory", release.MediumMemory, true, true},
		{"memory without a RAM tier", release.MediumMemory, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			proxy := testenv.StartFaultProxy(t, w.m.Endpoint)
			r, err := source.NewReader(ctx, release.SchemeS3, source.FetchOptions{Endpoint: proxy.URL})
			if err != nil {
				t.Fatal(err)
			}
			c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: r})
			if err != nil {
				t.Fatal(err)
			}
			views := cache.NewViews(c.Layout())
			opts := agent.Options{Node: "node-a", Client: w.client, Cache: c, Views: views, Labels: map[string]string{"pool": "search", "zone": "a"},
				ReportInterval: 50 * time.Millisecond, IdleReport: 200 * time.Millisecond, PollWait: 2 * time.Second}
			var mem *cache.Memory
			if tc.ram {
				root := filepath.Join(t.TempDir(), "ram")
				if mem, err = cache.NewMemory(c, root, 64<<20); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
				opts.Memory, opts.MemoryViews = mem, cache.NewViews(mem.Layout())
			}
			if _, err := w.client.CreateChannel(ctx, "warm", release.Config{
				Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}, Medium: tc.medium}}); err != nil {
				t.Fatal(err)
			}
			w.publish(t, "warm", "v1", []byte("one"))
			a, err := agent.New(opts)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { _ = a.Run(runCtx); close(done) }()
			t.Cleanup(func() { cancel(); <-done })

			stored := func(v string) func() bool {
				return func() bool { return c.Stored("warm", v) && (!tc.inRAM || mem.Stored("warm", v)) }
			}
			eventually(t, "the warm head v1 fetched with no view", stored("v1"))
			w.publish(t, "warm", "v2", []byte("two"))
			eventually(t, "the new warm head v2 fetched with no view", stored("v2"))
			if tc.ram && !tc.inRAM && mem.Stored("warm", "v2") {
				t.Error("a channel warm on disk was loaded into RAM")
			}

			// What NodeStage + NodePublish do for a new pod: ensure the
			// head, then make its view.
			before := proxy.BytesServed()
			ensure, medium, vs := a.Ensure, release.MediumDisk, views
			if tc.inRAM {
				ensure, medium, vs = a.EnsureMemory, release.MediumMemory, opts.MemoryViews
			}
			if err := ensure(ctx, "warm", "v2", nil); err != nil {
				t.Fatal(err)
			}
			view, err := vs.Create(cache.ViewRecord{VolumeID: "pvc-1", PodUID: "pod-1", Channel: "warm", Medium: medium}, "v2")
			if err != nil {
				t.Fatal(err)
			}
			if got := proxy.BytesServed() - before; got != 0 {
				t.Errorf("staging a volume of the warm channel read %d bytes from the origin, want 0", got)
			}
			if got, err := os.ReadFile(filepath.Join(view.Path, "current", "d", "file.bin")); err != nil || string(got) != "two" {
				t.Errorf("the new pod's view reads %q, %v; want \"two\"", got, err)
			}
		})
	}
}
