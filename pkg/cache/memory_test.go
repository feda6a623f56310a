package cache_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
)

// TestMemoryTier: a release is loaded into a tmpfs the cache mounts and
// sizes, keeps its disk copy, survives re-opening the tier (a plugin
// restart), refuses what does not fit, and is retained per channel.
func TestMemoryTier(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "m1/a", bytes.NewReader(content("m1", 3<<20)), "")
	e.put(t, "m2/a", bytes.NewReader(content("m2", 2<<20)), "")
	e.put(t, "huge/a", bytes.NewReader(content("huge", 9<<20)), "")
	v1 := e.publish(t, "mem", "v1", 1, map[string]string{"d": "m1/"})
	v2 := e.publish(t, "mem", "v2", 2, map[string]string{"d": "m2/"})
	big := e.publish(t, "mem", "v3", 3, map[string]string{"d": "huge/"})
	disk := e.newCache(t, t.TempDir())
	root := filepath.Join(t.TempDir(), "ram")
	mem, err := cache.NewMemory(disk, root, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil || st.Type != unix.TMPFS_MAGIC || int64(st.Blocks)*st.Bsize != 8<<20 {
		t.Fatalf("no 8 MiB tmpfs at %s: type %#x, %d bytes, %v", root, st.Type, int64(st.Blocks)*st.Bsize, err)
	}
	// Huge pages where the kernel has them for tmpfs.
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/shmem_enabled"); err == nil {
		if opts := tmpfsOptions(t, root); !slices.Contains(strings.Split(opts, ","), "huge=within_size") {
			t.Errorf("tmpfs at %s has options %q, want huge=within_size", root, opts)
		}
	}
	for _, rel := range []struct {
		v    string
		want []byte
	}{{"v1", content("m1", 3<<20)}, {"v2", content("m2", 2<<20)}} {
		r := v1
		if rel.v == "v2" {
			r = v2
		}
		if err := mem.Ensure(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(mem.Layout().StoreDir("mem", rel.v), "d", "a"))
		if err != nil || !bytes.Equal(got, rel.want) {
			t.Fatalf("RAM copy of %s: %v", rel.v, err)
		}
		if !disk.Stored("mem", rel.v) {
			t.Fatalf("no disk copy of %s", rel.v)
		}
	}
	// Re-opening keeps the tmpfs and what is in it.
	mem, err = cache.NewMemory(disk, root, 8<<20)
	if err != nil || !mem.Stored("mem", "v1") {
		t.Fatalf("after re-open: stored v1 %t, %v", mem.Stored("mem", "v1"), err)
	}
	// 9 MiB cannot fit in 8 MiB of RAM: a space error; the disk copy is made.
	if err := mem.Ensure(t.Context(), big); !errors.Is(err, cache.ErrNoSpace) {
		t.Fatalf("Ensure of a release larger than the tmpfs: %v, want ErrNoSpace", err)
	}
	if mem.Stored("mem", "v3") || !mem.Stored("mem", "v1") || !mem.Stored("mem", "v2") {
		t.Fatal("the space error changed what is in RAM")
	}
	removed, err := mem.Retain("mem", map[string]bool{"v2": true})
	if err != nil || len(removed) != 1 || removed[0] != "v1" || mem.Stored("mem", "v1") || !disk.Stored("mem", "v1") {
		t.Fatalf("Retain: removed %v, %v; want v1 gone from RAM only", removed, err)
	}
}

// tmpfsOptions returns the filesystem options of the tmpfs mounted at dir,
// as /proc/self/mountinfo lists them (the last mount there wins).
func tmpfsOptions(t *testing.T, dir string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	opts := ""
	for line := range strings.Lines(string(info)) {
		// ID parent dev root mountpoint options [optional...] - type source superoptions
		fields := strings.Fields(line)
		sep := slices.Index(fields, "-")
		if len(fields) > 4 && fields[4] == dir && sep > 0 && len(fields) > sep+3 && fields[sep+1] == "tmpfs" {
			opts = fields[sep+3]
		}
	}
	if opts == "" {
		t.Fatalf("no tmpfs mounted at %s in /proc/self/mountinfo", dir)
	}
	return opts
}
