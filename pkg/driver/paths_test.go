package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// pathWorld is a node driver whose kubelet directory and store are temp
// dirs, with the traps an escape would use: a link inside the kubelet
// directory to a directory outside it, a dangling link, and the store
// below the kubelet directory (as in tests/csi). The outside directory
// stands for /etc: were the guard broken, the test would unmount, remove
// or mount over a decoy, never over the host's /etc.
type pathWorld struct {
	d                     *Driver
	kubelet, store, other string
	etc                   string // the decoy
}

func newPathWorld(t *testing.T) pathWorld {
	t.Helper()
	base := t.TempDir()
	w := pathWorld{kubelet: filepath.Join(base, "kubelet"), other: filepath.Join(base, "elsewhere"), etc: filepath.Join(base, "etc")}
	w.store = filepath.Join(w.kubelet, "hydra-store")
	for _, dir := range []string{filepath.Join(w.kubelet, "pods", "uid-1", "volumes"), w.other, filepath.Join(w.etc, "cron.d")} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(w.etc, filepath.Join(w.kubelet, "pods", "uid-1", "volumes", "to-etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(w.other, "nothing-yet"), filepath.Join(w.kubelet, "pods", "dangling")); err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Root: w.store, Reader: source.NewLocalReader()})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	w.d, err = New(Options{Node: true, NodeID: "node-a", Client: cl, Cache: c, Views: cache.NewViews(c.Layout()), KubeletDir: w.kubelet})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// escapes are paths that must never be mounted at or looked at, each with
// what makes it one.
func (w pathWorld) escapes() []struct{ name, path string } {
	vols := filepath.Join(w.kubelet, "pods", "uid-1", "volumes")
	return []struct{ name, path string }{
		{"../ traversal", vols + "/../../../../etc"},
		{"../ traversal to the decoy", vols + "/../../../../etc/cron.d"},
		{"../ that stays inside", vols + "/../volumes/x"},
		{"absolute elsewhere", filepath.Join(w.other, "mount")},
		{"absolute (the decoy)", w.etc},
		{"symlink to etc", filepath.Join(vols, "to-etc")},
		{"below a symlink to etc", filepath.Join(vols, "to-etc", "cron.d")},
		{"dangling symlink", filepath.Join(w.kubelet, "pods", "dangling")},
		{"NUL", vols + "/a\x00b"},
		{"relative", "pods/uid-1/volumes/x"},
		{"the kubelet dir itself", w.kubelet},
		{"inside the store", filepath.Join(w.store, "store", "x")},
		{"the store itself", w.store},
	}
}

// TestPathGuard: every RPC that takes a path refuses every escape with
// InvalidArgument naming the field, before it touches anything.
func TestPathGuard(t *testing.T) {
	w := newPathWorld(t)
	ok := filepath.Join(w.kubelet, "pods", "uid-1", "volumes", "kubernetes.io~csi", "pv", "mount")
	okStaging := filepath.Join(w.kubelet, "plugins", "kubernetes.io", "csi", "hydra.csi.dev", "abc", "globalmount")
	vc := map[string]string{AttrChannel: "idx"}
	rpcs := []struct {
		rpc, field string
		call       func(ctx context.Context, p string) error
	}{
		{"NodeStageVolume", "staging_target_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: p,
				VolumeCapability: testCap(), VolumeContext: vc})
			return err
		}},
		{"NodeUnstageVolume", "staging_target_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: p})
			return err
		}},
		{"NodePublishVolume", "target_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: okStaging,
				TargetPath: p, VolumeCapability: testCap(), VolumeContext: vc})
			return err
		}},
		{"NodePublishVolume", "staging_target_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: p,
				TargetPath: ok, VolumeCapability: testCap(), VolumeContext: vc})
			return err
		}},
		{"NodeUnpublishVolume", "target_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: p})
			return err
		}},
		{"NodeGetVolumeStats", "volume_path", func(ctx context.Context, p string) error {
			_, err := w.d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "v", VolumePath: p})
			return err
		}},
	}
	for _, rpc := range rpcs {
		for _, e := range w.escapes() {
			t.Run(rpc.rpc+"/"+rpc.field+"/"+e.name, func(t *testing.T) {
				err := toStatus(rpc.call(t.Context(), e.path))
				if rpc.field == "volume_path" && e.name == "relative" {
					// csi-sanity: a relative path is where no volume is.
					if status.Code(err) != codes.NotFound {
						t.Fatalf("%v, want NotFound", err)
					}
					return
				}
				if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), rpc.field) {
					t.Fatalf("%v, want InvalidArgument naming %s", err, rpc.field)
				}
			})
		}
	}
	if _, err := os.Stat(filepath.Join(w.etc, "cron.d")); err != nil {
		t.Errorf("the decoy etc was touched: %v", err)
	}
}

// TestPathGuardAccepts: kubelet's own paths pass, existing or not, and
// also through a link that stays inside (a kubelet root that is itself a
// link, as on some distributions).
func TestPathGuardAccepts(t *testing.T) {
	w := newPathWorld(t)
	link := filepath.Join(filepath.Dir(w.kubelet), "kubelet-link")
	if err := os.Symlink(w.kubelet, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		filepath.Join(w.kubelet, "pods", "uid-1", "volumes", "kubernetes.io~csi", "pv", "mount"),
		filepath.Join(w.kubelet, "pods", "uid-1"),
		filepath.Join(link, "pods", "uid-1", "volumes", "new"),
		filepath.Join(w.kubelet, "plugins", "kubernetes.io", "csi", "hydra.csi.dev", "abc", "globalmount"),
	} {
		if err := w.d.paths.check("target_path", p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	// The same guard built on the link accepts the real paths too.
	g, err := newPathGuard(link, w.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.check("target_path", filepath.Join(w.kubelet, "pods", "uid-1", "x")); err != nil {
		t.Error(err)
	}
	var fe *release.FieldError
	if err := g.check("target_path", filepath.Join(w.kubelet, "pods", "uid-1", "volumes", "to-etc")); !errors.As(err, &fe) {
		t.Errorf("link to /etc through a linked kubelet root: %v, want a FieldError", err)
	}
}

func testCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
	}
}
