package csi_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestViewsReadOnly: whatever a pod does through its target path, even as
// root, the kernel refuses to write (EROFS): the view is bind-mounted
// read-only, nosuid and nodev. And the store's files, which every view's
// hardlinks share, carry no write bit, in both tiers.
func TestViewsReadOnly(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "ro")
	data := pattern(9, 64<<10)
	w.publish(t, "ro", "v1", map[string][]byte{"a.bin": data, "sub/b.bin": pattern(3, 1000)})
	memRoot := filepath.Join(t.TempDir(), "mem")
	// The plugin mounts the tmpfs and leaves it mounted when it stops.
	t.Cleanup(func() { _ = unix.Unmount(memRoot, unix.MNT_DETACH) })
	p := startPlugin(t, w, pluginConfig{memoryRoot: memRoot, memorySize: "64Mi"})

	for _, medium := range []string{"disk", "memory"} {
		t.Run(medium, func(t *testing.T) {
			vol := p.createVolume(t, "pvc-ro-"+medium, map[string]string{"channel": "ro", "medium": medium})
			staging := p.stage(t, vol)
			pd := p.pod("ro-" + medium)
			p.publish(t, vol, staging, pd)
			wantReadOnlyTarget(t, pd.target)
			wantFile(t, filepath.Join(pd.target, "current", dataset, "a.bin"), data)
		})
	}
	wantNoWriteBits(t, filepath.Join(p.root, "store"))
	wantNoWriteBits(t, filepath.Join(memRoot, "store"))
}

// wantReadOnlyTarget tries every kind of write through target.
func wantReadOnlyTarget(t *testing.T, target string) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		flag int64
	}{{"ro", unix.ST_RDONLY}, {"nosuid", unix.ST_NOSUID}, {"nodev", unix.ST_NODEV}} {
		if st.Flags&f.flag == 0 {
			t.Errorf("%s: mounted without %s (flags %#x)", target, f.name, st.Flags)
		}
	}
	file := filepath.Join(target, "current", dataset, "a.bin")
	writes := map[string]func() error{
		"create in the view": func() error { return os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o600) },
		"create in a release": func() error {
			return os.WriteFile(filepath.Join(target, "current", dataset, "new"), []byte("x"), 0o600)
		},
		"open a file for writing": func() error {
			f, err := os.OpenFile(file, os.O_WRONLY, 0)
			if err == nil {
				_ = f.Close()
			}
			return err
		},
		"truncate":         func() error { return os.Truncate(file, 0) },
		"chmod":            func() error { return os.Chmod(file, 0o666) },
		"remove":           func() error { return os.Remove(file) },
		"mkdir":            func() error { return os.Mkdir(filepath.Join(target, "current", "d"), 0o755) },
		"flip current":     func() error { return os.Symlink("/etc", filepath.Join(target, "current2")) },
		"rename a release": func() error { return os.Rename(filepath.Join(target, "current"), filepath.Join(target, "old")) },
	}
	for name, write := range writes {
		if err := write(); !errors.Is(err, unix.EROFS) {
			t.Errorf("%s through %s: %v, want EROFS", name, target, err)
		}
	}
}

// wantNoWriteBits checks that no file under dir has a write bit.
func wantNoWriteBits(t *testing.T, dir string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s: mode %v has a write bit", p, fi.Mode())
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no file under %s: nothing was checked", dir)
	}
}
