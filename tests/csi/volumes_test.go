package csi_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
)

// TestInlineEphemeralVolume publishes an inline volume, as kubelet does:
// no CreateVolume, no NodeStageVolume, the channel in the volume context.
// Publish stages it; unpublish leaves no mount, view or staging record.
func TestInlineEphemeralVolume(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "inline")
	data := pattern(4, 64<<10)
	w.publish(t, "inline", "v1", map[string][]byte{"a.bin": data})
	p := startPlugin(t, w, pluginConfig{})

	const id = "csi-4f1c0ffee1"
	pd := p.pod("inline")
	vc := podContext(map[string]string{"channel": "inline"}, pd)
	vc["csi.storage.k8s.io/ephemeral"] = "true"
	req := &csi.NodePublishVolumeRequest{VolumeId: id, TargetPath: pd.target, Readonly: true,
		VolumeCapability: mountCap(), VolumeContext: vc}
	for range 2 { // the second call is kubelet's retry: idempotent
		if _, err := p.node.NodePublishVolume(rpcCtx(t), req); err != nil {
			t.Fatalf("NodePublishVolume of an inline volume: %v", err)
		}
	}
	if n := mountCount(t, pd.target); n != 1 {
		t.Fatalf("%s: %d mounts, want 1", pd.target, n)
	}
	wantFile(t, filepath.Join(pd.target, "current", dataset, "a.bin"), data)
	record := filepath.Join(p.root, "staging", id+".json")
	if _, err := os.Stat(record); err != nil {
		t.Fatalf("the inline volume's staging record: %v", err)
	}

	p.unpublish(t, id, pd)
	if n := mountCount(t, pd.target); n != 0 {
		t.Errorf("%s: still mounted %d times after unpublish", pd.target, n)
	}
	wantGone(t, pd.target)
	wantGone(t, viewDir(p.root, id, pd.uid))
	wantGone(t, record)
}

// TestMemoryMedium serves a medium=memory volume from the tmpfs the plugin
// mounts at --memory-root: the pod's files are on a tmpfs, not on the
// disk cache's filesystem.
func TestMemoryMedium(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "ram")
	data := pattern(5, 128<<10)
	w.publish(t, "ram", "v1", map[string][]byte{"a.bin": data})
	memRoot := filepath.Join(t.TempDir(), "mem")
	// The plugin mounts the tmpfs and leaves it mounted when it stops.
	t.Cleanup(func() { _ = unix.Unmount(memRoot, unix.MNT_DETACH) })
	p := startPlugin(t, w, pluginConfig{memoryRoot: memRoot, memorySize: "64Mi"})

	vol := p.createVolume(t, "pvc-ram", map[string]string{"channel": "ram", "medium": "memory"})
	if got := vol.GetVolumeContext()["medium"]; got != "memory" {
		t.Fatalf("volume context medium %q, want memory", got)
	}
	staging := p.stage(t, vol)
	pd := p.pod("ram")
	p.publish(t, vol, staging, pd)
	file := filepath.Join(pd.target, "current", dataset, "a.bin")
	wantFile(t, file, data)
	var st unix.Statfs_t
	if err := unix.Statfs(file, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("%s: filesystem type %#x, want tmpfs (%#x)", file, st.Type, unix.TMPFS_MAGIC)
	}
	wantGone(t, viewDir(p.root, vol.GetVolumeId(), pd.uid)) // the view is in the RAM tier
	resp, err := p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: vol.GetVolumeId(), VolumePath: pd.target})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetVolumeCondition(); c.GetAbnormal() {
		t.Errorf("condition %v, want normal", c)
	}

	p.unpublish(t, vol.GetVolumeId(), pd)
	wantGone(t, pd.target)
	wantGone(t, viewDir(memRoot, vol.GetVolumeId(), pd.uid))
}
