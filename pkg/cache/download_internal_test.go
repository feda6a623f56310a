package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestCreateFileNoSpace: a file the filesystem cannot hold is the space
// error naming it, and a file that already has its size (a resumed
// download) keeps its bytes.
func TestCreateFileNoSpace(t *testing.T) {
	testenv.RequireRoot(t, "it mounts a tmpfs")
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs (the tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	c := &Cache{}
	big := plannedFile{dataset: "d", file: release.File{Path: "big", Size: 4 << 20}, path: filepath.Join(root, "d", "big")}
	err := c.createFile(big)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "d/big") {
		t.Fatalf("create a 4 MiB file on a 1 MiB tmpfs: %v, want ErrNoSpace naming d/big", err)
	}
	small := plannedFile{dataset: "d", file: release.File{Path: "small", Size: 512 << 10}, path: filepath.Join(root, "d", "small")}
	if err := c.createFile(small); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small.path, []byte("kept"), 0o644); err != nil { // O_TRUNC: now 4 bytes
		t.Fatal(err)
	}
	if err := c.createFile(small); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(small.path); err != nil || len(b) != 512<<10 || string(b[:4]) != "\x00\x00\x00\x00" {
		t.Fatalf("create over a file of the wrong size: %d bytes starting %q (%v), want it emptied to 512 KiB", len(b), b[:min(4, len(b))], err)
	}
	f, err := os.OpenFile(small.path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte("kept"), 0)
	if err = errors.Join(err, f.Close()); err != nil {
		t.Fatal(err)
	}
	if err := c.createFile(small); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(small.path); err != nil || len(b) != 512<<10 || string(b[:4]) != "kept" {
		t.Fatalf("create over a file of the right size: %d bytes starting %q (%v), want it kept", len(b), b[:min(4, len(b))], err)
	}
}
