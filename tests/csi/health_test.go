package csi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
)

// TestDamagedReleaseAndGoneMount checks NodeGetVolumeStats' condition
// turning abnormal when a file of the served release no longer matches
// its manifest, and that unpublish and unstage succeed, twice, for a
// target whose mount someone else already removed.
func TestDamagedReleaseAndGoneMount(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "health")
	w.publish(t, "health", "v1", map[string][]byte{"a.bin": pattern(7, 32<<10)})
	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-health", map[string]string{"channel": "health"})
	staging := p.stage(t, vol)
	pd := p.pod("health")
	p.publish(t, vol, staging, pd)
	stats := func() *csi.VolumeCondition {
		t.Helper()
		resp, err := p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: vol.GetVolumeId(), VolumePath: pd.target})
		if err != nil {
			t.Fatalf("NodeGetVolumeStats: %v", err)
		}
		return resp.GetVolumeCondition()
	}
	if c := stats(); c.GetAbnormal() {
		t.Fatalf("condition %v before any damage, want normal", c)
	}

	// The store's file and the view's are one inode: damage shows in both.
	stored := filepath.Join(cache.Layout{Root: p.root}.StoreDir("health", "v1"), dataset, "a.bin")
	if err := os.Truncate(stored, 100); err != nil {
		t.Fatal(err)
	}
	if c := stats(); !c.GetAbnormal() || !strings.Contains(c.GetMessage(), "a.bin") {
		t.Errorf("condition %v after truncating a.bin, want abnormal naming it", c)
	}

	if err := unix.Unmount(pd.target, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		p.unpublish(t, vol.GetVolumeId(), pd)
		_, err := p.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: staging})
		if err != nil {
			t.Fatalf("NodeUnstageVolume: %v", err)
		}
	}
	wantGone(t, pd.target)
	wantGone(t, viewDir(p.root, vol.GetVolumeId(), pd.uid))
}
