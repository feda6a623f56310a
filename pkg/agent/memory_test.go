package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestAgentMemoryTier: for a memory-medium view, the head is loaded into
// RAM as well as onto disk, and RAM keeps only what the view uses and the
// release it is to move to, while the disk keeps its copies.
func TestAgentMemoryTier(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.client.CreateChannel(ctx, "ram", release.Config{NodeKeep: 5}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "ram", "v1", []byte("one"))
	root := filepath.Join(t.TempDir(), "ram")
	mem, err := cache.NewMemory(w.cache, root, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	memViews := cache.NewViews(mem.Layout())
	a, err := agent.New(agent.Options{Node: "node-a", Client: w.client, Cache: w.cache, Views: w.views,
		Memory: mem, MemoryViews: memViews, ReportInterval: 50 * time.Millisecond, IdleReport: 200 * time.Millisecond, PollWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = a.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	if err := a.EnsureMemory(ctx, "ram", "v1", nil); err != nil {
		t.Fatal(err)
	}
	view, err := memViews.Create(cache.ViewRecord{VolumeID: "vol", PodUID: "pod", Channel: "ram", Medium: "memory"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	a.Poke()
	// Paused: the view stays on v1 while new heads arrive.
	if _, err := w.client.Pause(ctx, "ram", "hold the view on v1"); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "ram", "v2", []byte("two"))
	eventually(t, "v2 in RAM", func() bool { return mem.Stored("ram", "v2") })
	w.publish(t, "ram", "v3", []byte("three"))
	eventually(t, "v3 in RAM and v2 out of it", func() bool { return mem.Stored("ram", "v3") && !mem.Stored("ram", "v2") })
	if !mem.Stored("ram", "v1") || !w.cache.Stored("ram", "v2") {
		t.Fatalf("RAM lost the release in use (v1 %t) or disk lost v2 (%t)", mem.Stored("ram", "v1"), w.cache.Stored("ram", "v2"))
	}
	if got, err := os.ReadFile(filepath.Join(view.Path, "current", "d", "file.bin")); err != nil || string(got) != "one" {
		t.Fatalf("memory view: %q, %v", got, err)
	}
}
