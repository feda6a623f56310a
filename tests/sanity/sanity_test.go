// Package sanity runs the csi-sanity suite (its Go package) against the
// real plugin: hydra-csi --mode=all started in-process on a unix socket,
// real bind mounts (run as root), a real manager on bbolt and a channel
// published from a real MinIO.
//
// Skipped specs, all for capabilities the plugin does not advertise (by
// design: no attach, no listing, no snapshots, clones or expansion, no
// single-node-multi-writer distinction, no v1.12 health RPCs):
//   - ControllerPublish/Unpublish, "volume lifecycle": attachRequired is
//     false; there is nothing to attach.
//   - ListVolumes, GetCapacity: the controller keeps no state; volumes are
//     views of channels and take no capacity out of a pool.
//   - snapshots, clones, ExpandVolume, NodeExpandVolume, ModifyVolume:
//     the data is immutable and sized by its release.
//   - "existing name and different capacity": CreateVolume reports the
//     capacity as unknown (0) when the request asks for more than the
//     release holds (sanity asks for 10 GiB), so sanity skips it itself.
//   - SINGLE_NODE_MULTI_WRITER specs: every publish is read-only.
//   - NodeGetVolumeHealth / NodeGetStorageHealth: the plugin reports
//     health through NodeGetVolumeStats' VolumeCondition instead.
package sanity

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

const channel = "sanity"

func TestSanity(t *testing.T) {
	testenv.RequireRoot(t, "csi-sanity needs real bind mounts")
	mgrURL := world(t)
	dir := t.TempDir()
	sock := startPlugin(t, dir, mgrURL)

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeParameters = map[string]string{"channel": channel}
	cfg.IdempotentCount = 2
	sanity.Test(t, cfg)
}

// world starts MinIO and a manager, publishes a release of the channel
// from MinIO, and returns the manager's URL.
func world(t *testing.T) string {
	t.Helper()
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	m.CreateBucket(t, "data")
	m.Put(t, "data", "idx/v1/a.bin", []byte("the first file"))
	m.Put(t, "data", "idx/v1/sub/b.bin", []byte("the second, in a directory"))

	mgr := managertest.Start(t, managertest.Options{})
	cl, err := client.New(mgr.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cl.CreateChannel(ctx, channel, release.Config{}); err != nil {
		t.Fatal(err)
	}
	lister, err := source.NewS3(ctx, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := release.ParseSource("s3://data/idx/v1/")
	if err != nil {
		t.Fatal(err)
	}
	man, err := lister.List(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Publish(ctx, channel, api.PublishRequest{Version: "v1",
		Datasets: []release.Dataset{{Name: "idx", Source: src.String(), Manifest: man}}})
	if err != nil {
		t.Fatal(err)
	}
	return mgr.URL
}

// startPlugin runs hydra-csi --mode=all as the binary would, and stops it
// (then unmounts anything left under dir) in t.Cleanup.
func startPlugin(t *testing.T, dir, mgrURL string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"--mode=all", "--endpoint=unix://" + filepath.Join(dir, "csi", "csi.sock"),
		"--node-id=sanity-node", "--cache-root=" + filepath.Join(dir, "cache"), "--manager=" + mgrURL,
		// csi-sanity's target and staging directories are in dir.
		"--kubelet-dir=" + dir}
	go func() { done <- app.Run(ctx, args, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hydra-csi: %v", err)
		}
		unmountUnder(t, dir)
	})
	select {
	case sock := <-ready:
		return sock
	case err := <-done:
		t.Fatalf("hydra-csi did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("hydra-csi did not start within a minute")
	}
	return ""
}

// unmountUnder lazily unmounts what a failed spec left mounted under dir,
// so that t.TempDir's removal never walks into a view; it reports them.
func unmountUnder(t *testing.T, dir string) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			t.Errorf("left mounted after the suite: %s", fields[4])
			_ = unix.Unmount(fields[4], unix.MNT_DETACH)
		}
	}
}
