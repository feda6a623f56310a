package csi_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/container-storage-interface/spec/lib/go/csi"
)

// TestAbandonedDownloadSpaceReturned: a download that failed halfway
// (an object gone from the bucket) leaves its allocated files in tmp/;
// after the volume is unstaged and the plugin restarted, a release that
// fits only without them is still staged on the 64 MiB cache.
func TestAbandonedDownloadSpaceReturned(t *testing.T) {
	w := newWorld(t)
	root := filepath.Join(t.TempDir(), "cache")
	mountTmpfs(t, root, 64<<20)
	createChannel(t, w, "half")
	w.publish(t, "half", "v1", map[string][]byte{"a.bin": pattern(1, 30<<20), "b.bin": pattern(2, 10<<20)})
	if _, err := w.minio.S3Client(t).DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String("data"), Key: aws.String("half/v1/b.bin")}); err != nil {
		t.Fatal(err)
	}
	p := startPlugin(t, w, pluginConfig{cacheRoot: root})

	half := p.createVolume(t, "pvc-half", map[string]string{"channel": "half"})
	staging := filepath.Join(p.dir, "staging", half.GetVolumeId())
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := p.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: half.GetVolumeId(),
		StagingTargetPath: staging, VolumeCapability: mountCap(), VolumeContext: half.GetVolumeContext()}); err == nil {
		t.Fatal("staged a release one of whose objects is gone")
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", "half", "v1")); err != nil {
		t.Fatalf("the failed download left no partial download: %v", err)
	}
	if _, err := p.node.NodeUnstageVolume(rpcCtx(t), &csi.NodeUnstageVolumeRequest{
		VolumeId: half.GetVolumeId(), StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
	p.restart(t)

	createChannel(t, w, "whole")
	data := pattern(3, 40<<20)
	w.publish(t, "whole", "v1", map[string][]byte{"f.bin": data})
	whole := p.createVolume(t, "pvc-whole", map[string]string{"channel": "whole"})
	pd := p.pod("whole")
	p.publish(t, whole, p.stage(t, whole), pd)
	wantFile(t, filepath.Join(pd.target, "current", dataset, "f.bin"), data)
	p.unpublish(t, whole.GetVolumeId(), pd)
}
