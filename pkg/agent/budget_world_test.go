package agent_test

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestAgentEvictsPastWatermark: on a 32 MiB cache with watermarks 50/40,
// the background download of a used channel's new head evicts the head
// of a channel nothing on the node uses, through the agent's Needed, and
// keeps the release the view shows.
func TestAgentEvictsPastWatermark(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=32m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	r, err := source.NewReader(ctx, release.SchemeS3, source.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w.cache, err = cache.New(cache.Options{Root: root, Reader: r}); err != nil {
		t.Fatal(err)
	}
	w.views = cache.NewViews(w.cache.Layout())
	for _, ch := range []string{"idx", "other"} {
		if _, err := w.client.CreateChannel(ctx, ch, release.Config{NodeKeep: 5}); err != nil {
			t.Fatal(err)
		}
	}
	const mib = 1 << 20
	w.publish(t, "other", "v1", bytes.Repeat([]byte("o"), 8*mib))
	w.publish(t, "idx", "v1", bytes.Repeat([]byte("1"), 6*mib))
	a := w.startAgent(t, w.client)
	if err := w.cache.SetBudget(cache.Budget{HighWatermark: 50, LowWatermark: 40, Needed: a.Needed}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"other", "idx"} {
		if err := a.Ensure(ctx, ch, "v1", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.views.Create(cache.ViewRecord{VolumeID: "pvc-1", PodUID: "pod-1", Channel: "idx"}, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.client.Pause(ctx, "idx", "hold the view on v1"); err != nil {
		t.Fatal(err)
	}
	a.Poke()
	// 14 + 8 MiB pass 16 (50% of 32): other/v1, which nothing uses, goes.
	w.publish(t, "idx", "v2", bytes.Repeat([]byte("2"), 8*mib))
	eventually(t, "idx/v2 downloaded", func() bool { return w.cache.Stored("idx", "v2") })
	if w.cache.Stored("other", "v1") {
		t.Error("other/v1, which nothing on the node uses, was not evicted")
	}
	if !w.cache.Stored("idx", "v1") {
		t.Error("idx/v1, which the view shows, was evicted")
	}
}
