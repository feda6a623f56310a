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

	// The volume is free again as soon as the first handler returns, long
	// before the download ends: kubelet's retry waits for the download
	// instead of being Aborted until it is over. The client can see its
	// deadline a moment before the server's handler has returned, so an
	// Aborted reply is retried the way kubelet would, after a pause; the
	// call that is let in must start while the download is still going.
	for {
		servedBefore := proxy.BytesServed()
		_, err := p.node.NodeStageVolume(rpcCtx(t), req)
		if status.Code(err) == codes.Aborted {
			if servedBefore >= size {
				t.Fatalf("NodeStageVolume still Aborted after the whole release was fetched: the in-flight entry outlived the RPC")
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("NodeStageVolume retried: %v", err)
		}
		if servedBefore >= size {
			t.Fatalf("the retry was let in only after the download had ended (%d of %d bytes served before it): the in-flight entry outlived the RPC", servedBefore, size)
		}
		break
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
