package csi_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestKilledPluginLeavesMountsReadable kills the plugin with SIGKILL while
// two pods have the volume mounted: every mount stays and reads the same
// bytes (a file held open too), and the restarted plugin on the same root
// and socket answers stats, a repeated publish, unpublish and unstage.
func TestKilledPluginLeavesMountsReadable(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "restart")
	a, b := pattern(1, 300<<10), []byte("the second file, in a directory")
	w.publish(t, "restart", "v1", map[string][]byte{"a.bin": a, "sub/b.bin": b})

	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-restart", map[string]string{"channel": "restart"})
	staging := p.stage(t, vol)
	pods := []pod{p.pod("a"), p.pod("b")}
	for _, pd := range pods {
		p.publish(t, vol, staging, pd)
		wantFile(t, filepath.Join(pd.target, "current", dataset, "a.bin"), a)
	}
	held, err := os.Open(filepath.Join(pods[0].target, "current", dataset, "sub", "b.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() }) // when a check fails before the Close below

	p.kill(t)
	for _, pd := range pods {
		if n := mountCount(t, pd.target); n != 1 {
			t.Fatalf("%s: %d mounts after SIGKILL, want 1", pd.target, n)
		}
		if !readOnlyMount(t, pd.target) {
			t.Errorf("%s: not read-only after SIGKILL", pd.target)
		}
		wantFile(t, filepath.Join(pd.target, "current", dataset, "a.bin"), a)
		wantFile(t, filepath.Join(pd.target, "current", dataset, "sub", "b.bin"), b)
	}
	wantHeld(t, held, b)

	p.restart(t)
	for _, pd := range pods {
		stats, err := p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: vol.GetVolumeId(), VolumePath: pd.target})
		if err != nil {
			t.Fatalf("NodeGetVolumeStats after restart: %v", err)
		}
		if c := stats.GetVolumeCondition(); c == nil || c.GetAbnormal() {
			t.Errorf("%s: condition after restart %v, want normal", pd.name, c)
		}
		p.publish(t, vol, staging, pd) // kubelet's retry after a restart: already there
		if n := mountCount(t, pd.target); n != 1 {
			t.Errorf("%s: %d mounts after publishing again, want 1", pd.target, n)
		}
	}
	wantHeld(t, held, b)
	// kubelet unpublishes once the pod's containers are gone, and with
	// them every open file (an open file keeps the mount busy).
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}

	for _, pd := range pods {
		p.unpublish(t, vol.GetVolumeId(), pd)
		if n := mountCount(t, pd.target); n != 0 {
			t.Errorf("%s: still mounted %d times after unpublish", pd.target, n)
		}
		wantGone(t, pd.target)
		wantGone(t, viewDir(p.root, vol.GetVolumeId(), pd.uid))
	}
	_, err = p.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: staging})
	if err != nil {
		t.Fatalf("NodeUnstageVolume after restart: %v", err)
	}
	wantGone(t, filepath.Join(p.root, "staging", vol.GetVolumeId()+".json"))
}

// wantHeld reads an open file from its start.
func wantHeld(t *testing.T, f *os.File, want []byte) {
	t.Helper()
	got, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	if err != nil {
		t.Fatalf("read held %s: %v", f.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("held %s: got %q, want %q", f.Name(), got, want)
	}
}
