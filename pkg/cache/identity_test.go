package cache_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestReusedVersionIsReplaced: a version name published again with other
// bytes (after retention removed the first release, or after its channel
// was deleted and recreated, which counts seq from 1 again) is downloaded
// and replaces the stored copy of the first publish, on disk and in RAM;
// a view built on the first copy keeps reading it.
func TestReusedVersionIsReplaced(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "a/f", bytes.NewReader(content("A", 2<<20)), "")
	e.put(t, "c/f", bytes.NewReader(content("C", 3<<20)), "")
	for _, tc := range []struct {
		name     string
		reusedAt uint64 // the seq of the second publish of v1
	}{
		{"retention freed the name", 3},
		{"channel deleted and recreated", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := e.publish(t, "reuse", "v1", 1, map[string]string{"d": "a/"})
			time.Sleep(time.Millisecond) // a later publish time, as the manager's clock gives
			again := e.publish(t, "reuse", "v1", tc.reusedAt, map[string]string{"d": "c/"})
			disk := e.newCache(t, t.TempDir())
			root := filepath.Join(t.TempDir(), "ram")
			mem, err := cache.NewMemory(disk, root, 16<<20)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
			if err := mem.Ensure(t.Context(), first); err != nil {
				t.Fatal(err)
			}
			spec := cache.ViewRecord{VolumeID: "vol", PodUID: "pod-old", Channel: "reuse"}
			diskView, err := cache.NewViews(disk.Layout()).Create(spec, "v1")
			if err != nil {
				t.Fatal(err)
			}
			memView, err := cache.NewViews(mem.Layout()).Create(spec, "v1")
			if err != nil {
				t.Fatal(err)
			}

			if disk.StoredAs("reuse", "v1", again.Identity()) || mem.StoredAs("reuse", "v1", again.Identity()) {
				t.Fatal("the first publish's copy counts as the second's")
			}
			if err := mem.Ensure(t.Context(), again); err != nil {
				t.Fatal(err)
			}
			checkStored(t, disk, again, map[string][]byte{"d/f": content("C", 3<<20)})
			if got := readFile(t, filepath.Join(mem.Layout().StoreDir("reuse", "v1"), "d", "f")); !bytes.Equal(got, content("C", 3<<20)) {
				t.Errorf("RAM copy of v1 has %d bytes of the first publish's content, want the second's", len(got))
			}
			for tier, v := range map[string]cache.ViewInfo{"disk": diskView, "memory": memView} {
				if got := readFile(t, filepath.Join(v.Path, "current", "d", "f")); !bytes.Equal(got, content("A", 2<<20)) {
					t.Errorf("%s view built on the first copy no longer reads it", tier)
				}
			}
			if !disk.StoredAs("reuse", "v1", again.Identity()) || disk.StoredAs("reuse", "v1", first.Identity()) ||
				!mem.StoredAs("reuse", "v1", again.Identity()) || !disk.StoredAs("reuse", "v1", release.Identity{}) {
				t.Error("StoredAs does not tell the two publishes apart after the replacement")
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
