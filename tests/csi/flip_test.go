package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/hydra-csi/hydra/pkg/cache"
)

// TestPodsOfOneChannelFlipIndependently publishes one volume for two pods
// on one node, lets the node agent fetch a new head, and flips only pod
// A's view: A sees v2, B still v1, and a file A opened before the flip
// still reads v1. The rollout is paused meanwhile so that the manager
// plans no flip of its own; resumed, it moves B too, and A stays.
func TestPodsOfOneChannelFlipIndependently(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "flip")
	v1, v2 := []byte("release one"), []byte("release two, a little longer")
	w.publish(t, "flip", "v1", map[string][]byte{"a.bin": v1})

	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-flip", map[string]string{"channel": "flip"})
	staging := p.stage(t, vol)
	a, b := p.pod("a"), p.pod("b")
	p.publish(t, vol, staging, a)
	p.publish(t, vol, staging, b)
	file := func(pd pod) string { return filepath.Join(pd.target, "current", dataset, "a.bin") }
	held, err := os.Open(file(a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })

	ctx := context.Background()
	if _, err := w.cl.Pause(ctx, "flip", "the test flips pod A by hand"); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "flip", "v2", map[string][]byte{"a.bin": v2})
	disk := cache.Layout{Root: p.root}
	waitFor(t, time.Minute, "the agent to store the new head v2", func() bool {
		_, err := os.Stat(disk.StoreDir("flip", "v2"))
		return err == nil
	})

	// The flip the agent makes when the manager asks for it.
	if _, err := cache.NewViews(disk).Flip(vol.GetVolumeId(), a.uid, "v2"); err != nil {
		t.Fatal(err)
	}
	wantFile(t, file(a), v2)
	wantFile(t, file(b), v1)
	wantHeld(t, held, v1)
	wantCurrent(t, p, vol.GetVolumeId(), a, "v2")
	wantCurrent(t, p, vol.GetVolumeId(), b, "v1")

	if _, err := w.cl.Resume(ctx, "flip"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the manager's rollout to move pod B to v2", func() bool {
		got, err := os.ReadFile(file(b))
		return err == nil && string(got) == string(v2)
	})
	wantFile(t, file(a), v2)
	wantHeld(t, held, v1)
}

// wantCurrent checks, through NodeGetVolumeStats, that pd's view serves
// version and is healthy.
func wantCurrent(t *testing.T, p *plugin, volumeID string, pd pod, version string) {
	t.Helper()
	resp, err := p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: volumeID, VolumePath: pd.target})
	if err != nil {
		t.Fatalf("NodeGetVolumeStats %s: %v", pd.name, err)
	}
	c := resp.GetVolumeCondition()
	want := "serving release flip/" + version
	if c.GetAbnormal() || c.GetMessage() != want {
		t.Errorf("%s: condition %v, want normal %q", pd.name, c, want)
	}
}
