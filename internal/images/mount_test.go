package images

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/testenv"

	"golang.org/x/sys/unix"
	mount "k8s.io/mount-utils"
)

// TestNodeMountApplets runs the node image's own mount and umount (busybox
// applets, extracted from the image) with nothing else on PATH, through
// k8s.io/mount-utils as the node plugin does, and with the argv shapes
// mount-utils builds (mount [-t T] [-o O] [SRC] TARGET; a bind mount is
// `-o bind` then `-o bind,remount,ro,...`; umount TARGET). Real mounts,
// so it runs as root.
func TestNodeMountApplets(t *testing.T) {
	testenv.RequireRoot(t, "this test mounts tmpfs and bind mounts")
	in, _ := smallInputs(t)
	specs, err := Hydra(in)
	if err != nil {
		t.Fatal(err)
	}
	root := extract(t, writeAll(t, specs[2:3])[0].Path)
	t.Setenv("PATH", filepath.Join(root, "bin"))
	for _, cmd := range []string{"mount", "umount"} {
		if p, err := exec.LookPath(cmd); err != nil || p != filepath.Join(root, "bin", cmd) {
			t.Fatalf("%s resolves to %q (%v), want the image's", cmd, p, err)
		}
	}
	// mount.New probes umount's "not mounted" wording now, so after PATH.
	mounter := mount.New("")

	t.Run("tmpfs with size", func(t *testing.T) {
		target := mkdir(t, t.TempDir(), "tmpfs")
		if err := mounter.Mount("tmpfs", target, "tmpfs", []string{"size=1m"}); err != nil {
			t.Fatal(err)
		}
		if mi := mountAt(t, target); mi.FsType != "tmpfs" || !slices.Contains(mi.SuperOptions, "size=1024k") {
			t.Errorf("%s: %s %q, want tmpfs with size=1024k", target, mi.FsType, mi.SuperOptions)
		}
		if err := mounter.Unmount(target); err != nil {
			t.Fatal(err)
		}
		requireNotMounted(t, target)
	})
	t.Run("read-only bind through mount-utils", func(t *testing.T) {
		src, target := bindDirs(t)
		if err := mounter.Mount(src, target, "", []string{"bind", "ro"}); err != nil {
			t.Fatal(err)
		}
		requireReadOnlyView(t, src, target)
		// The driver's unpublish path: unmount, then remove the target.
		if err := mount.CleanupMountPoint(target, mounter, false); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("CleanupMountPoint left %s: %v", target, err)
		}
	})
	t.Run("--bind then -o bind,remount,ro", func(t *testing.T) {
		src, target := bindDirs(t)
		run(t, "mount", "--bind", src, target)
		run(t, "mount", "-o", "bind,remount,ro", src, target)
		requireReadOnlyView(t, src, target)
		run(t, "umount", target)
		requireNotMounted(t, target)
	})
	t.Run("mount-utils argv of a bind remount with the source's flags", func(t *testing.T) {
		src, target := bindDirs(t)
		run(t, "mount", mount.MakeMountArgs(src, target, "", []string{"bind"})...)
		run(t, "mount", mount.MakeMountArgs(src, target, "", []string{"bind", "remount", "ro", "nodev", "nosuid", "relatime"})...)
		requireReadOnlyView(t, src, target)
		if mi := mountAt(t, target); !slices.Contains(mi.MountOptions, "nodev") || !slices.Contains(mi.MountOptions, "nosuid") {
			t.Errorf("%s: options %q, want nodev and nosuid", target, mi.MountOptions)
		}
		run(t, "umount", target)
	})
}

// extract unpacks an image's root file system into a temp dir.
func extract(t *testing.T, tarball string) string {
	t.Helper()
	root := t.TempDir()
	for p, f := range rootFS(t, loadImage(t, tarball)) {
		dst := filepath.Join(root, p)
		var err error
		switch {
		case f.hdr.FileInfo().IsDir():
			err = os.MkdirAll(dst, 0o755)
		case f.hdr.Linkname != "":
			err = errors.Join(os.MkdirAll(filepath.Dir(dst), 0o755), os.Symlink(f.hdr.Linkname, dst))
		default:
			err = errors.Join(os.MkdirAll(filepath.Dir(dst), 0o755), os.WriteFile(dst, f.data, f.hdr.FileInfo().Mode().Perm()))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	p := filepath.Join(parent, name)
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	// Whatever a failing test leaves mounted is detached before TempDir's
	// removal walks into it.
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	return p
}

// bindDirs returns a source holding one file and an empty target.
func bindDirs(t *testing.T) (src, target string) {
	t.Helper()
	dir := t.TempDir()
	src, target = mkdir(t, dir, "src"), mkdir(t, dir, "target")
	if err := os.WriteFile(filepath.Join(src, "data"), []byte("release"), 0o644); err != nil {
		t.Fatal(err)
	}
	return src, target
}

// run execs an applet from PATH (the image's /bin) and fails on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// requireReadOnlyView checks target shows src's file and refuses writes
// with EROFS, while src stays writable.
func requireReadOnlyView(t *testing.T, src, target string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(b) != "release" {
		t.Fatalf("read through the bind mount: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into the view: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(src, "new"), nil, 0o644); err != nil {
		t.Errorf("the source became read-only too: %v", err)
	}
}

// mountAt returns the topmost mount at target.
func mountAt(t *testing.T, target string) mount.MountInfo {
	t.Helper()
	infos, err := mount.ParseMountInfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, mi := range slices.Backward(infos) {
		if mi.MountPoint == target {
			return mi
		}
	}
	t.Fatalf("%s is not a mount point", target)
	return mount.MountInfo{}
}

func requireNotMounted(t *testing.T, target string) {
	t.Helper()
	mnt, err := mount.New("").IsMountPoint(target)
	if err != nil || mnt {
		t.Errorf("%s still mounted (%v)", target, err)
	}
}
