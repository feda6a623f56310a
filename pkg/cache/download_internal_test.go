package cache

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestAllocateNoSpace: a part's allocation on a full filesystem is the
// space error, naming the file and the part's bytes; sizeFile makes a
// sparse file of the final size that holds no space yet, and keeps a file
// that has its size.
func TestAllocateNoSpace(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs (the tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	path := filepath.Join(root, "f")
	if err := sizeFile(path, 4<<20); err != nil {
		t.Fatalf("a sparse 4 MiB file on a 1 MiB tmpfs: %v", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := allocate(f, "d/f", 0, 512<<10); err != nil {
		t.Fatalf("allocate the first 512 KiB: %v", err)
	}
	if _, err := f.WriteAt([]byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	err = allocate(f, "d/f", 2<<20, 2<<20)
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "d/f bytes 2097152-4194303") {
		t.Fatalf("allocate 2 MiB more on a 1 MiB tmpfs: %v, want ErrNoSpace naming d/f and the bytes", err)
	}
	if err := sizeFile(path, 4<<20); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 4<<20 || string(b[:4]) != "kept" {
		t.Fatalf("sizeFile of a file with its size: %d bytes starting %q (%v), want it kept", len(b), b[:min(4, len(b))], err)
	}
}
