package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// TestLinkTree checks that linkTree reproduces a tree whose files come
// before, between and after subdirectories, with empty directories and a
// directory of more files than one chunk, every file the very inode of
// its source.
func TestLinkTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	files := []string{"top", "a/0-before", "a/b/deep", "a/b/c/deeper", "a/m-between", "a/n/x", "a/z-after", "zz"}
	for i := range 3*linkChunk + 7 {
		files = append(files, fmt.Sprintf("big/f%04d", i))
	}
	for _, f := range files {
		mkdir(t, src, filepath.Dir(f))
		writeFile(t, filepath.Join(src, f), f)
	}
	mkdir(t, src, "empty", "nested-empty")

	for _, workers := range []int{1, linkWorkers} {
		dst := filepath.Join(t.TempDir(), "dst")
		if err := linkTree(src, dst, workers); err != nil {
			t.Fatal(err)
		}
		checkLinkedTree(t, src, dst, files)
		if err := os.RemoveAll(dst); err != nil { // for the link counts of the next round
			t.Fatal(err)
		}
	}
}

// checkLinkedTree checks that dst holds the entries of src, its files
// hardlinks of those of src.
func checkLinkedTree(t *testing.T, src, dst string, files []string) {
	t.Helper()
	want, got := treeEntries(t, src), treeEntries(t, dst)
	if !slices.Equal(want, got) {
		t.Fatalf("dst holds %d entries, want the %d of src:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	for _, f := range files {
		a, err := os.Stat(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(dst, f))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s: dst is not a hardlink of src", f)
		}
		if n := b.Sys().(*syscall.Stat_t).Nlink; n != 2 {
			t.Errorf("%s: %d links, want 2", f, n)
		}
	}
}

// TestLinkNamesNamesTheFile checks that a link that fails is reported with
// both paths: here the destination file exists already.
func TestLinkNamesNamesTheFile(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(src, "f0"), "0")
	writeFile(t, filepath.Join(src, "f1"), "1")
	writeFile(t, filepath.Join(dst, "f1"), "in the way")
	err := linkNames(src, dst, []string{"f0", "f1"})
	var le *os.LinkError
	if !errors.As(err, &le) || le.New != filepath.Join(dst, "f1") || !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want a LinkError naming %s that is ErrExist", err, filepath.Join(dst, "f1"))
	}
	if _, err := os.Stat(filepath.Join(dst, "f0")); err != nil {
		t.Errorf("f0 before the failure: %v", err)
	}
}

// treeEntries lists a tree as sorted "path/" for directories and "path"
// for files, relative to root.
func treeEntries(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
