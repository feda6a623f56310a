package csi_test

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestVolumeStatsAreTheView checks what NodeGetVolumeStats reports as the
// docs say: used bytes and inodes are the served release's (its files'
// sizes and count), total and available are the filesystem's under it.
func TestVolumeStatsAreTheView(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "stats")
	files := map[string][]byte{"a.bin": pattern(3, 32<<10), "sub/b.bin": pattern(4, 1000), "c.txt": []byte("c")}
	w.publish(t, "stats", "v1", files)
	var wantBytes int64
	for _, b := range files {
		wantBytes += int64(len(b))
	}
	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-stats", map[string]string{"channel": "stats"})
	staging := p.stage(t, vol)
	pd := p.pod("stats")
	p.publish(t, vol, staging, pd)

	resp, err := p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: vol.GetVolumeId(), VolumePath: pd.target})
	if err != nil {
		t.Fatalf("NodeGetVolumeStats: %v", err)
	}
	want := map[csi.VolumeUsage_Unit]int64{csi.VolumeUsage_BYTES: wantBytes, csi.VolumeUsage_INODES: int64(len(files))}
	for _, u := range resp.GetUsage() {
		if u.GetUsed() != want[u.GetUnit()] {
			t.Errorf("%v used = %d, want %d (the release's)", u.GetUnit(), u.GetUsed(), want[u.GetUnit()])
		}
		if u.GetTotal() <= 0 || u.GetAvailable() < 0 || u.GetAvailable() > u.GetTotal() {
			t.Errorf("%v total %d, available %d: want the filesystem's", u.GetUnit(), u.GetTotal(), u.GetAvailable())
		}
		delete(want, u.GetUnit())
	}
	if len(want) != 0 {
		t.Errorf("no usage reported in %v", want)
	}
}
