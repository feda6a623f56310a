package cache

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hydra-csi/hydra/pkg/release"
)

const testChannel = "search-index"

// newTestViews returns views over a fresh root holding releases v1 and v2
// of testChannel, 20 files each.
func newTestViews(t testing.TB) (*Views, Layout) {
	t.Helper()
	l := Layout{Root: t.TempDir()}
	storeRelease(t, l, testChannel, "v1", 20)
	storeRelease(t, l, testChannel, "v2", 20)
	return NewViews(l), l
}

// storeRelease installs a release of n read-only files spread over two
// datasets and nested directories, as the cache's install would leave it.
// Each file holds "<version>:<path>".
func storeRelease(t testing.TB, l Layout, channel, version string, n int) {
	t.Helper()
	root := l.StoreDir(channel, version)
	for i := range n {
		rel := testFilePath(i)
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(version+":"+rel), 0o444); err != nil {
			t.Fatal(err)
		}
	}
}

func testFilePath(i int) string {
	return fmt.Sprintf("%s/d%03d/f%05d", []string{"ann", "kv"}[i%2], i/100, i)
}

func spec(volumeID, podUID string) ViewRecord {
	return ViewRecord{VolumeID: volumeID, PodUID: podUID, PodName: "web-0", PodNamespace: "default", Channel: testChannel}
}

func mustCreate(t testing.TB, v *Views, s ViewRecord, version string) ViewInfo {
	t.Helper()
	info, err := v.Create(s, version)
	if err != nil {
		t.Fatalf("Create(%s/%s, %s): %v", s.VolumeID, s.PodUID, version, err)
	}
	return info
}

func mustFlip(t testing.TB, v *Views, volumeID, podUID, version string) ViewInfo {
	t.Helper()
	info, err := v.Flip(volumeID, podUID, version)
	if err != nil {
		t.Fatalf("Flip(%s/%s, %s): %v", volumeID, podUID, version, err)
	}
	return info
}

// assertCurrent checks that current is a relative symlink to a complete
// hardlink tree of the stored version: the same files, the same inodes.
func assertCurrent(t testing.TB, l Layout, info ViewInfo, version string) {
	t.Helper()
	if info.Current != version {
		t.Errorf("%s/%s: Current = %q, want %q", info.VolumeID, info.PodUID, info.Current, version)
	}
	target, err := os.Readlink(filepath.Join(info.Path, "current"))
	if err != nil {
		t.Fatalf("readlink current: %v", err)
	}
	if want := "releases/" + version; target != want {
		t.Fatalf("current -> %q, want %q (relative)", target, want)
	}
	assertSameTree(t, l.StoreDir(info.Channel, version), filepath.Join(info.Path, "current"))
}

// assertSameTree checks that dst (followed if a symlink) holds the files
// of src as hardlinks, and no other files.
func assertSameTree(t testing.TB, src, dst string) {
	t.Helper()
	var stored, seen int
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		stored++
		a, err := os.Stat(path)
		if err != nil {
			return err
		}
		b, err := os.Stat(dst + path[len(src):])
		if err != nil {
			return err
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s is not a hardlink of %s", dst+path[len(src):], path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dst+"/", func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			seen++
		}
		return err
	})
	if err != nil || seen != stored || stored == 0 {
		t.Fatalf("%s holds %d files (%v), %s %d", dst, seen, err, src, stored)
	}
}

// assertNoTemps checks that no temp name of the algorithms is left.
func assertNoTemps(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Join(dir, "releases")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("temp %s left in %s", e.Name(), d)
			}
		}
	}
}

func TestViewLifecycle(t *testing.T) {
	v, l := newTestViews(t)
	a := mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	b := mustCreate(t, v, spec("vol-1", "pod-b"), "v2")
	assertCurrent(t, l, a, "v1")
	assertCurrent(t, l, b, "v2")
	if a.Path != l.ViewDir("vol-1", "pod-a") || !slices.Equal(a.Releases, []string{"v1"}) {
		t.Errorf("Create = %+v", a)
	}
	if got, err := v.Get("vol-1", "pod-a"); err != nil || !equalInfo(got, a) {
		t.Errorf("Get = %+v, %v; want %+v", got, err, a)
	}
	if _, err := os.Stat(l.ViewRecord("vol-1", "pod-a")); err != nil {
		t.Errorf("record: %v", err)
	}

	list, err := v.List()
	if err != nil || len(list) != 2 || !equalInfo(list[0], a) || !equalInfo(list[1], b) {
		t.Fatalf("List = %+v, %v", list, err)
	}

	for _, pod := range []string{"pod-a", "pod-a", "pod-b", "never-made"} { // twice: idempotent
		if err := v.Remove("vol-1", pod); err != nil {
			t.Fatalf("Remove(%s): %v", pod, err)
		}
	}
	if _, err := v.Get("vol-1", "pod-a"); !errors.Is(err, ErrNoView) {
		t.Errorf("Get after Remove: %v, want ErrNoView", err)
	}
	if _, err := os.Stat(filepath.Join(l.ViewsDir(), "vol-1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("volume dir left after its last view: %v", err)
	}
	if list, err := v.List(); err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %+v, %v", list, err)
	}
	if _, err := os.Stat(l.StoreDir(testChannel, "v1") + "/ann/d000/f00000"); err != nil {
		t.Errorf("Remove touched the store: %v", err)
	}
}

func equalInfo(a, b ViewInfo) bool {
	return a.ViewRecord == b.ViewRecord && a.Current == b.Current && a.Path == b.Path && slices.Equal(a.Releases, b.Releases)
}

func TestViewCreateExisting(t *testing.T) {
	base := spec("vol-1", "pod-a")
	base.Pinned, base.Medium = "v1", "disk"
	tests := []struct {
		name    string
		edit    func(*ViewRecord)
		version string
		wantErr error
	}{
		{"same spec", func(*ViewRecord) {}, "v1", nil},
		{"other pod name", func(s *ViewRecord) { s.PodName = "web-1" }, "v1", nil},
		{"other channel", func(s *ViewRecord) { s.Channel = "other" }, "v1", ErrViewConflict},
		{"other medium", func(s *ViewRecord) { s.Medium = "memory" }, "v1", ErrViewConflict},
		{"other pin", func(s *ViewRecord) { s.Pinned = "v2" }, "v2", ErrViewConflict},
		{"unpinned", func(s *ViewRecord) { s.Pinned = "" }, "v2", ErrViewConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, l := newTestViews(t)
			storeRelease(t, l, "other", "v1", 1)
			first := mustCreate(t, v, base, "v1")
			s := base
			tt.edit(&s)
			got, err := v.Create(s, tt.version)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Create again: %v, want %v", err, tt.wantErr)
			}
			if err == nil && !equalInfo(got, first) {
				t.Errorf("Create again = %+v, want the first view %+v", got, first)
			}
			if err != nil && !strings.Contains(err.Error(), "cache: view vol-1/pod-a: ") {
				t.Errorf("error %q lacks the view prefix", err)
			}
			assertCurrent(t, l, mustGet(t, v, "vol-1", "pod-a"), "v1")
		})
	}
}

func TestViewCreateKeepsCurrent(t *testing.T) {
	v, l := newTestViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	mustFlip(t, v, "vol-1", "pod-a", "v2")
	// A repeated NodePublish names the release it started with; the view
	// keeps what the flip set.
	assertCurrent(t, l, mustCreate(t, v, spec("vol-1", "pod-a"), "v1"), "v2")
}

func mustGet(t testing.TB, v *Views, volumeID, podUID string) ViewInfo {
	t.Helper()
	info, err := v.Get(volumeID, podUID)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestViewRefusesBadInput(t *testing.T) {
	long := strings.Repeat("x", 129)
	tests := []struct {
		name, field string
		spec        ViewRecord
		version     string
	}{
		{"empty volume", "volumeID", ViewRecord{PodUID: "p"}, "v1"},
		{"dot volume", "volumeID", ViewRecord{VolumeID: ".", PodUID: "p"}, "v1"},
		{"dotdot volume", "volumeID", ViewRecord{VolumeID: "..", PodUID: "p"}, "v1"},
		{"hidden volume", "volumeID", ViewRecord{VolumeID: ".build-x", PodUID: "p"}, "v1"},
		{"slash volume", "volumeID", ViewRecord{VolumeID: "a/b", PodUID: "p"}, "v1"},
		{"NUL volume", "volumeID", ViewRecord{VolumeID: "a\x00b", PodUID: "p"}, "v1"},
		{"long volume", "volumeID", ViewRecord{VolumeID: long, PodUID: "p"}, "v1"},
		{"empty pod", "podUID", ViewRecord{VolumeID: "v"}, "v1"},
		{"dotdot pod", "podUID", ViewRecord{VolumeID: "v", PodUID: ".."}, "v1"},
		{"slash pod", "podUID", ViewRecord{VolumeID: "v", PodUID: "../../etc"}, "v1"},
		{"NUL pod", "podUID", ViewRecord{VolumeID: "v", PodUID: "\x00"}, "v1"},
		{"long pod", "podUID", ViewRecord{VolumeID: "v", PodUID: long}, "v1"},
		{"record-like pod", "podUID", ViewRecord{VolumeID: "v", PodUID: "p.json"}, "v1"},
		{"bad channel", "channel", ViewRecord{VolumeID: "v", PodUID: "p", Channel: "Search"}, "v1"},
		{"bad version", "version", ViewRecord{VolumeID: "v", PodUID: "p"}, "../v1"},
		{"empty version", "version", ViewRecord{VolumeID: "v", PodUID: "p"}, ""},
		{"bad medium", "medium", ViewRecord{VolumeID: "v", PodUID: "p", Medium: "ssd"}, "v1"},
		{"bad pin", "pinned", ViewRecord{VolumeID: "v", PodUID: "p", Pinned: "-x"}, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, l := newTestViews(t)
			s := tt.spec
			if s.Channel == "" {
				s.Channel = testChannel
			}
			if _, err := v.Create(s, tt.version); !isFieldError(err, tt.field) {
				t.Errorf("Create: %v, want an invalid %s", err, tt.field)
			}
			if tt.field == "volumeID" || tt.field == "podUID" {
				checkIDRefused(t, v, s.VolumeID, s.PodUID, tt.field)
			}
			if tt.field == "version" {
				mustCreate(t, v, spec("v", "p"), "v1")
				if _, err := v.Flip("v", "p", tt.version); !isFieldError(err, "version") {
					t.Errorf("Flip: %v, want an invalid version", err)
				}
				return
			}
			if _, err := os.Stat(l.ViewsDir()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused input left %s: %v", l.ViewsDir(), err)
			}
		})
	}
}

func checkIDRefused(t *testing.T, v *Views, volumeID, podUID, field string) {
	t.Helper()
	_, flipErr := v.Flip(volumeID, podUID, "v1")
	_, getErr := v.Get(volumeID, podUID)
	for name, err := range map[string]error{
		"Flip": flipErr, "Get": getErr,
		"Prune": v.Prune(volumeID, podUID), "Remove": v.Remove(volumeID, podUID),
	} {
		if !isFieldError(err, field) {
			t.Errorf("%s: %v, want an invalid %s", name, err, field)
		}
	}
}

func isFieldError(err error, field string) bool {
	var fe *release.FieldError
	return errors.Is(err, release.ErrInvalid) && errors.As(err, &fe) && fe.Field == field &&
		strings.HasPrefix(err.Error(), "cache: view") && strings.Contains(err.Error(), field)
}

func TestViewNotStored(t *testing.T) {
	v, l := newTestViews(t)
	_, err := v.Create(spec("vol-1", "pod-a"), "v9")
	if !errors.Is(err, ErrNotStored) || !strings.Contains(err.Error(), "cache: view vol-1/pod-a: release search-index/v9") {
		t.Fatalf("Create: %v, want ErrNotStored naming the release", err)
	}
	if _, err := v.Get("vol-1", "pod-a"); !errors.Is(err, ErrNoView) {
		t.Errorf("Get after refused Create: %v", err)
	}
	if _, err := os.Stat(l.ViewDir("vol-1", "pod-a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused Create left a view dir: %v", err)
	}

	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	if _, err := v.Flip("vol-1", "pod-a", "v9"); !errors.Is(err, ErrNotStored) {
		t.Errorf("Flip: %v, want ErrNotStored", err)
	}
	if _, err := v.Flip("vol-1", "pod-b", "v1"); !errors.Is(err, ErrNoView) {
		t.Errorf("Flip of a missing view: %v, want ErrNoView", err)
	}
	info := mustGet(t, v, "vol-1", "pod-a")
	assertCurrent(t, l, info, "v1")
	assertNoTemps(t, info.Path)
}

func TestViewFlip(t *testing.T) {
	v, l := newTestViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	info := mustFlip(t, v, "vol-1", "pod-a", "v2")
	assertCurrent(t, l, info, "v2")
	assertNoTemps(t, info.Path)
	if !slices.Equal(info.Releases, []string{"v1", "v2"}) {
		t.Errorf("Releases = %v, want the old tree kept until Prune", info.Releases)
	}

	// Idempotent: the link is not even replaced.
	before, _ := os.Lstat(filepath.Join(info.Path, "current"))
	assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v2"), "v2")
	after, _ := os.Lstat(filepath.Join(info.Path, "current"))
	if !os.SameFile(before, after) {
		t.Error("Flip to the current release replaced current")
	}

	// Back to v1 reuses the tree still under releases/, even once the
	// store has dropped it.
	if err := os.RemoveAll(l.StoreDir(testChannel, "v1")); err != nil {
		t.Fatal(err)
	}
	info = mustFlip(t, v, "vol-1", "pod-a", "v1")
	if info.Current != "v1" {
		t.Errorf("flip back: Current = %q", info.Current)
	}
	if b, err := os.ReadFile(filepath.Join(info.Path, "current", testFilePath(3))); err != nil || string(b) != "v1:"+testFilePath(3) {
		t.Errorf("flip back reads %q, %v", b, err)
	}
}

func TestViewFlipKeepsOpenFiles(t *testing.T) {
	v, _ := newTestViews(t)
	info := mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	name := testFilePath(7)
	f, err := os.Open(filepath.Join(info.Path, "current", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustFlip(t, v, "vol-1", "pod-a", "v2")
	if err := v.Prune("vol-1", "pod-a"); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, v, "vol-1", "pod-a").Releases; !slices.Equal(got, []string{"v2"}) {
		t.Errorf("after Prune Releases = %v, want [v2]", got)
	}
	old, err := io.ReadAll(f)
	if err != nil || string(old) != "v1:"+name {
		t.Errorf("fd opened before the flip reads %q, %v; want the old bytes", old, err)
	}
	now, err := os.ReadFile(filepath.Join(info.Path, "current", name))
	if err != nil || string(now) != "v2:"+name {
		t.Errorf("current/%s reads %q, %v; want the new bytes", name, now, err)
	}
}

func TestViewFlipPodsIndependently(t *testing.T) {
	v, l := newTestViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	mustCreate(t, v, spec("vol-1", "pod-b"), "v1")
	assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v2"), "v2")
	assertCurrent(t, l, mustGet(t, v, "vol-1", "pod-b"), "v1")
	if err := v.Prune("vol-1", "pod-a"); err != nil {
		t.Fatal(err)
	}
	assertCurrent(t, l, mustGet(t, v, "vol-1", "pod-b"), "v1")
}

func TestViewPinned(t *testing.T) {
	v, l := newTestViews(t)
	s := spec("vol-1", "pod-a")
	s.Pinned = "v1"
	if _, err := v.Create(s, "v2"); !errors.Is(err, ErrPinned) {
		t.Errorf("Create pinned to v1 at v2: %v, want ErrPinned", err)
	}
	mustCreate(t, v, s, "v1")
	if _, err := v.Flip("vol-1", "pod-a", "v2"); !errors.Is(err, ErrPinned) {
		t.Errorf("Flip of a pinned view: %v, want ErrPinned", err)
	}
	assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v1"), "v1")
}

// TestViewCrashLeftovers leaves what a crash at each step of Create, flip,
// Prune and Remove would leave, and checks that List ignores it, that the
// next Flip clears it, and that current always names a complete tree.
func TestViewCrashLeftovers(t *testing.T) {
	type env struct {
		l   Layout
		dir string // the view at v1
	}
	link := func(t *testing.T, e env, version, name string, files int) {
		t.Helper()
		dst := filepath.Join(e.dir, "releases", name)
		src := e.l.StoreDir(testChannel, version)
		for i := range files {
			p := filepath.Join(dst, testFilePath(i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(src, testFilePath(i)), p); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		crash func(*testing.T, env)
	}{
		{"half-linked tree", func(t *testing.T, e env) { link(t, e, "v2", ".build-v2", 3) }},
		{"empty build dir", func(t *testing.T, e env) { mkdir(t, e.dir, "releases/.build-v2") }},
		{"build of another release", func(t *testing.T, e env) { link(t, e, "v1", ".build-v3", 5) }},
		{"half-pruned tree", func(t *testing.T, e env) { link(t, e, "v2", ".prune-v0", 2) }},
		{"temp link to the new tree", func(t *testing.T, e env) { symlink(t, "releases/v2", e.dir, ".current.tmp") }},
		{"temp link dangling", func(t *testing.T, e env) { symlink(t, "releases/v7", e.dir, ".current.tmp") }},
		{"temp link outside", func(t *testing.T, e env) { symlink(t, "/etc", e.dir, ".current.tmp") }},
		{"temp link and half tree", func(t *testing.T, e env) {
			link(t, e, "v2", ".build-v2", 4)
			symlink(t, "releases/.build-v2", e.dir, ".current.tmp")
		}},
		{"tree in place, current not flipped", func(t *testing.T, e env) { link(t, e, "v2", "v2", 20) }},
		{"record temp", func(t *testing.T, e env) {
			writeFile(t, filepath.Join(e.l.ViewsDir(), "vol-1", ".pod-a.json.tmp"), "{garbage")
		}},
		{"view without record (Create or Remove cut short)", func(t *testing.T, e env) {
			mkdir(t, e.l.ViewsDir(), "vol-1/pod-orphan/releases/v1")
			symlink(t, "releases/v1", e.l.ViewsDir(), "vol-1/pod-orphan/current")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, l := newTestViews(t)
			info := mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
			tt.crash(t, env{l: l, dir: info.Path})

			// A restarted process: nothing but the disk.
			v = NewViews(l)
			list, err := v.List()
			if err != nil || len(list) != 1 {
				t.Fatalf("List after the crash = %+v, %v; want the one view", list, err)
			}
			assertCurrent(t, l, list[0], "v1")
			for _, r := range list[0].Releases {
				if r != "v1" && r != "v2" {
					t.Errorf("List shows release tree %q", r)
				}
			}

			assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v2"), "v2")
			assertNoTemps(t, info.Path)
			if err := v.Prune("vol-1", "pod-a"); err != nil {
				t.Fatal(err)
			}
			assertCurrent(t, l, mustCreate(t, v, spec("vol-1", "pod-orphan"), "v1"), "v1")
			for _, pod := range []string{"pod-a", "pod-orphan"} {
				if err := v.Remove("vol-1", pod); err != nil {
					t.Fatal(err)
				}
			}
			if entries, err := os.ReadDir(l.ViewsDir()); err != nil || len(entries) != 0 {
				t.Errorf("views/ after removing every view: %v, %v", entries, err)
			}
		})
	}
}

func mkdir(t *testing.T, parts ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(parts...), 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target string, parts ...string) {
	t.Helper()
	if err := os.Symlink(target, filepath.Join(parts...)); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestViewRepair(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
	}{
		{"current deleted", func(dir string) error { return os.Remove(dir + "/current") }},
		{"current dangling", func(dir string) error { return os.RemoveAll(dir + "/releases/v1") }},
		{"releases deleted", func(dir string) error { return os.RemoveAll(dir + "/releases") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, l := newTestViews(t)
			info := mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
			if err := tt.damage(info.Path); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, v, "vol-1", "pod-a"); got.Current != "" {
				t.Errorf("damaged view: Current = %q, want empty", got.Current)
			}
			if err := v.Prune("vol-1", "pod-a"); err == nil {
				t.Error("Prune of a view without current succeeded")
			}
			if used, err := v.InUse(); err != nil || len(used) != 0 {
				t.Errorf("InUse = %v, %v", used, err)
			}
			assertCurrent(t, l, mustCreate(t, v, spec("vol-1", "pod-a"), "v2"), "v2")
		})
	}
}

func TestViewDamagedRecord(t *testing.T) {
	v, l := newTestViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	mustCreate(t, v, spec("vol-2", "pod-b"), "v2")
	for _, content := range []string{"{", `{"volumeID":"vol-1","podUID":"pod-x","channel":"search-index"}`, `{"volumeID":"vol-1","podUID":"pod-a","channel":"Bad"}`} {
		writeFile(t, l.ViewRecord("vol-1", "pod-a"), content)
		if _, err := v.Get("vol-1", "pod-a"); err == nil || errors.Is(err, release.ErrInvalid) || !strings.Contains(err.Error(), "cache: view vol-1/pod-a: record ") {
			t.Errorf("Get with record %s: %v, want a damaged-record error (not ErrInvalid)", content, err)
		}
		list, err := v.List()
		if err == nil || len(list) != 1 || list[0].PodUID != "pod-b" {
			t.Errorf("List = %+v, %v; want pod-b and an error for pod-a", list, err)
		}
		if used, err := v.InUse(); err == nil {
			t.Errorf("InUse = %v with a damaged record; want an error", used)
		}
	}
}

func TestViewInUse(t *testing.T) {
	v, l := newTestViews(t)
	storeRelease(t, l, testChannel, "v3", 1)
	storeRelease(t, l, "other", "x1", 1)
	pinned := spec("vol-2", "pod-c")
	pinned.Pinned = "v3"
	other := spec("vol-3", "pod-d")
	other.Channel = "other"
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	mustCreate(t, v, spec("vol-1", "pod-b"), "v1")
	mustFlip(t, v, "vol-1", "pod-b", "v2")
	mustCreate(t, v, pinned, "v3")
	mustCreate(t, v, other, "x1")
	used, err := NewViews(l).InUse()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]bool{testChannel: {"v1": true, "v2": true, "v3": true}, "other": {"x1": true}}
	if fmt.Sprint(used) != fmt.Sprint(want) {
		t.Errorf("InUse = %v, want %v", used, want)
	}
	if err := v.Remove("vol-1", "pod-a"); err != nil {
		t.Fatal(err)
	}
	if used, _ := v.InUse(); used[testChannel]["v1"] {
		t.Errorf("InUse after the last v1 view went = %v", used)
	}
}

func TestViewRefusesOddStoreEntries(t *testing.T) {
	v, l := newTestViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	storeRelease(t, l, testChannel, "v3", 3)
	symlink(t, "/etc/passwd", l.StoreDir(testChannel, "v3"), "ann", "escape")
	_, err := v.Flip("vol-1", "pod-a", "v3")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "release search-index/v3") {
		t.Fatalf("Flip to a release holding a symlink: %v", err)
	}
	info := mustGet(t, v, "vol-1", "pod-a")
	assertCurrent(t, l, info, "v1")
	assertNoTemps(t, info.Path)
}

// TestViewConcurrent flips views of two volumes, two pods each, while
// readers go through current, List and InUse run, and two pods of a third
// volume are created and removed in a loop (its directory comes and goes).
func TestViewConcurrent(t *testing.T) {
	t.Run("linked", func(t *testing.T) { testViewConcurrent(t, false) })
	t.Run("spares", func(t *testing.T) { testViewConcurrent(t, true) })
}

// testViewConcurrent flips, creates and removes views from many goroutines
// while others read through current, list them and, with spares, prune the
// spares; every tree must end complete.
func testViewConcurrent(t *testing.T, spares bool) {
	v, l := newTestViews(t)
	if spares {
		if err := v.EnableSpares(SpareOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	type key struct{ vol, pod string }
	var views []key
	for _, vol := range []string{"vol-a", "vol-b"} {
		for _, pod := range []string{"pod-1", "pod-2"} {
			views = append(views, key{vol, pod})
			mustCreate(t, v, spec(vol, pod), "v1")
		}
	}
	const rounds = 16
	var wg sync.WaitGroup
	var stop sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 64)
	for _, k := range views {
		wg.Go(func() {
			for i := range rounds {
				if _, err := v.Flip(k.vol, k.pod, []string{"v2", "v1"}[i%2]); err != nil {
					errs <- err
					return
				}
			}
		})
		stop.Go(func() { readThroughCurrent(l.ViewDir(k.vol, k.pod), done, errs) })
	}
	for _, pod := range []string{"pod-1", "pod-2"} {
		wg.Go(func() {
			for range rounds {
				if _, err := v.Create(spec("vol-c", pod), "v1"); err != nil {
					errs <- err
					return
				}
				if err := v.Remove("vol-c", pod); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	stop.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := v.PruneSpares(); err != nil {
				errs <- err
				return
			}
			if _, err := v.List(); err != nil {
				errs <- err
				return
			}
			used, err := v.InUse()
			if err != nil {
				errs <- err
				return
			}
			if !used[testChannel]["v1"] && !used[testChannel]["v2"] {
				errs <- fmt.Errorf("InUse = %v, want v1 or v2 of %s", used, testChannel)
				return
			}
		}
	})
	wg.Wait()
	close(done)
	stop.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, k := range views {
		if err := v.Prune(k.vol, k.pod); err != nil {
			t.Fatal(err)
		}
		info := mustGet(t, v, k.vol, k.pod)
		assertCurrent(t, l, info, "v1") // an even number of flips
		assertNoTemps(t, info.Path)
	}
	if _, err := v.Get("vol-c", "pod-1"); !errors.Is(err, ErrNoView) {
		t.Errorf("vol-c/pod-1: %v", err)
	}
	if spares {
		v.spares.waitIdle()
		if n := testutil.ToFloat64(v.spares.trees.WithLabelValues("spare")); n == 0 {
			t.Error("no view took a spare tree")
		}
	}
}

// TestViewLocks checks the locking policy itself, which TestViewConcurrent
// can only hit by chance: pods of one volume run in parallel, one view runs
// one call at a time, and removing a volume's directory waits for every view
// of the volume.
func TestViewLocks(t *testing.T) {
	var l viewLocks
	unlockA := l.view("vol", "a", true)
	waitFor(t, "another pod of the volume", func() { l.view("vol", "b", true)() })

	sameView := make(chan struct{})
	// Each closes its channel once it has the lock and has let it go, so
	// that the map is empty when the test looks at it.
	go func() { l.view("vol", "a", false)(); close(sameView) }()
	wholeVolume := make(chan struct{})
	go func() { l.volume("vol")(); close(wholeVolume) }()
	for name, ch := range map[string]chan struct{}{"the same view": sameView, "the volume": wholeVolume} {
		select {
		case <-ch:
			t.Errorf("%s was locked while a view call ran", name)
		case <-time.After(50 * time.Millisecond):
		}
	}
	unlockA()
	waitFor(t, "the same view after unlock", func() { <-sameView })
	waitFor(t, "the volume after unlock", func() { <-wholeVolume })
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) != 0 {
		t.Errorf("locks left after every unlock: %v", l.m)
	}
}

func waitFor(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still blocked", what)
	}
}

// readThroughCurrent reads a file through current until done: every read
// must find the file of one complete release or the other.
func readThroughCurrent(dir string, done <-chan struct{}, errs chan<- error) {
	name := testFilePath(11)
	for {
		select {
		case <-done:
			return
		default:
		}
		b, err := os.ReadFile(filepath.Join(dir, "current", name))
		if err != nil {
			errs <- fmt.Errorf("read through %s/current: %w", dir, err)
			return
		}
		if string(b) != "v1:"+name && string(b) != "v2:"+name {
			errs <- fmt.Errorf("read through %s/current: %q, want one release's bytes", dir, b)
			return
		}
	}
}

func BenchmarkFlip1000Files(b *testing.B)  { benchmarkFlip(b, 1000) }
func BenchmarkFlip10000Files(b *testing.B) { benchmarkFlip(b, 10000) }

// benchmarkFlip times Flip between two stored releases of n files each,
// every flip linking a whole tree (the old one is pruned, untimed, after
// each flip), and reports the latency percentiles (the CSI goal is a p99
// of 100 ms for 1,000 files).
func benchmarkFlip(b *testing.B, n int) {
	l := Layout{Root: b.TempDir()}
	storeRelease(b, l, testChannel, "v1", n)
	storeRelease(b, l, testChannel, "v2", n)
	v := NewViews(l)
	mustCreate(b, v, spec("vol-1", "pod-a"), "v1")
	var took []time.Duration
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		mustFlip(b, v, "vol-1", "pod-a", []string{"v2", "v1"}[i%2])
		took = append(took, time.Since(start))
		b.StopTimer()
		if err := v.Prune("vol-1", "pod-a"); err != nil {
			b.Fatal(err)
		}
		// Commit the deletions now, or the next flip's first fsync pays
		// for them.
		if err := syncDir(l.ViewDir("vol-1", "pod-a")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	slices.Sort(took)
	pct := func(p float64) float64 {
		return float64(took[int(p*float64(len(took)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
