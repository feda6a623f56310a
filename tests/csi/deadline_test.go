package csi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestDownloadOutlivesTheRPC stages a volume through a slow S3 with a
// deadline far shorter than the download: the call ends DeadlineExceeded,
// the download goes on, and the retry without a deadline succeeds without
// fetching any byte twice.
func TestDownloadOutlivesTheRPC(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "late")
	files := map[string][]byte{"a.bin": pattern(6, 2<<20), "b.bin": []byte("small")}
	size := int64(0)
	for _, f := range files {
		size += int64(len(f))
	}
	w.publish(t, "late", "v1", files)
	proxy := testenv.StartFaultProxy(t, w.minio.Endpoint)
	proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 50 * time.Millisecond})
	p := startPlugin(t, w, pluginConfig{s3Endpoint: proxy.URL})

	vol := p.createVolume(t, "pvc-late", map[string]string{"channel": "late"})
	staging := filepath.Join(p.dir, "staging")
	req := &csi.NodeStageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: staging,
		VolumeCapability: mountCap(), VolumeContext: vol.GetVolumeContext()}
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := p.node.NodeStageVolume(short, req)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("NodeStageVolume with a 1s deadline: %v, want DeadlineExceeded", err)
	}
	servedAtDeadline := proxy.BytesServed()
	if servedAtDeadline == 0 || servedAtDeadline >= size {
		t.Fatalf("%d of %d bytes served when the first call ended: want a download under way", servedAtDeadline, size)
	}

	// Until the download ends the volume is free again: kubelet's retry is
	// not Aborted, it waits for the download.
	if _, err := p.node.NodeStageVolume(rpcCtx(t), req); err != nil {
		t.Fatalf("NodeStageVolume retried: %v", err)
	}
	if got := proxy.BytesServed(); got != size {
		t.Errorf("the proxy served %d bytes for a release of %d: some were fetched twice (or never)", got, size)
	}
	pd := p.pod("late")
	p.publish(t, vol, staging, pd)
	for name, body := range files {
		wantFile(t, filepath.Join(pd.target, "current", dataset, name), body)
	}
	if got := proxy.BytesServed(); got != size {
		t.Errorf("after publish the proxy served %d bytes, want %d", got, size)
	}
}
