package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestReusedVersionName: a version name published again with new content,
// after the node stored the first release of that name, serves the new
// content to a new pod, whichever way the name came free: retention
// (keep: 1) removed the first release, or the channel was deleted and
// created again (its publish order counts from 1 again).
func TestReusedVersionName(t *testing.T) {
	w := newWorldWith(t, managertest.Options{RetentionInterval: 100 * time.Millisecond})
	p := startPlugin(t, w, pluginConfig{})
	contentA, contentC := []byte("content A: the first release under v1"), []byte("content C: published again as v1")
	for _, tc := range []struct {
		channel string
		free    func(t *testing.T, channel string) // frees the name v1
	}{
		{"reuse-retention", func(t *testing.T, channel string) {
			w.publish(t, channel, "v2", map[string][]byte{"f": []byte("content B")})
			waitFor(t, time.Minute, "retention to remove v1", func() bool {
				rels, err := w.cl.ListReleases(context.Background(), channel)
				return err == nil && !slices.ContainsFunc(rels, func(s release.Summary) bool { return s.Version == "v1" })
			})
		}},
		{"reuse-recreated", func(t *testing.T, channel string) {
			if err := w.cl.DeleteChannel(context.Background(), channel); err != nil {
				t.Fatal(err)
			}
			createChannel(t, w, channel)
		}},
	} {
		t.Run(tc.channel, func(t *testing.T) {
			createChannel(t, w, tc.channel)
			w.publish(t, tc.channel, "v1", map[string][]byte{"f": contentA})
			first := p.createVolume(t, "pvc-"+tc.channel+"-1", map[string]string{"channel": tc.channel})
			staging := p.stage(t, first)
			if _, err := p.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{
				VolumeId: first.GetVolumeId(), StagingTargetPath: staging}); err != nil {
				t.Fatal(err)
			}
			wantFile(t, filepath.Join(p.root, "store", tc.channel, "v1", dataset, "f"), contentA)

			tc.free(t, tc.channel)
			w.publish(t, tc.channel, "v1", map[string][]byte{"f": contentC})
			second := p.createVolume(t, "pvc-"+tc.channel+"-2", map[string]string{"channel": tc.channel})
			pd := p.pod(tc.channel)
			p.publish(t, second, p.stage(t, second), pd)
			wantFile(t, filepath.Join(pd.target, "current", dataset, "f"), contentC)
			p.unpublish(t, second.GetVolumeId(), pd)
		})
	}
}

// TestDeletedChannelSpaceReturned: the releases of a channel deleted on
// the manager leave the node's store once no pod uses them, and stay gone
// across a restart.
func TestDeletedChannelSpaceReturned(t *testing.T) {
	w := newWorld(t)
	createChannel(t, w, "doomed")
	w.publish(t, "doomed", "v1", map[string][]byte{"f": pattern(7, 1<<20)})
	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-doomed", map[string]string{"channel": "doomed"})
	staging := p.stage(t, vol)
	pd := p.pod("doomed")
	p.publish(t, vol, staging, pd)
	stored := filepath.Join(p.root, "store", "doomed")
	if _, err := os.Stat(filepath.Join(stored, "v1")); err != nil {
		t.Fatalf("the release is not in the node's store: %v", err)
	}
	p.unpublish(t, vol.GetVolumeId(), pd)
	if _, err := p.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
	// The manager refuses the deletion until the node's report shows no view.
	waitFor(t, time.Minute, "the manager to delete the channel", func() bool {
		return w.cl.DeleteChannel(context.Background(), "doomed") == nil
	})
	waitFor(t, time.Minute, "the node to remove the deleted channel's releases", func() bool {
		_, err := os.Stat(stored)
		return os.IsNotExist(err)
	})
	p.stop(t)
	p.restart(t)
	wantGone(t, stored)
	wantGone(t, filepath.Join(p.root, "meta", "doomed"))
}

// createChannel creates a channel that keeps one release.
func createChannel(t testing.TB, w *world, name string) {
	t.Helper()
	if _, err := w.cl.CreateChannel(context.Background(), name, release.Config{Keep: 1}); err != nil {
		t.Fatal(err)
	}
}
