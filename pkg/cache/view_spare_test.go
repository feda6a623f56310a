package cache

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// newSpareViews returns views with spares over releases v1 and v2.
func newSpareViews(t *testing.T) (*Views, Layout) {
	t.Helper()
	v, l := newTestViews(t)
	if err := v.EnableSpares(SpareOptions{Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	return v, l
}

// spareNames lists the spares of testChannel, temps included.
func spareNames(t *testing.T, l Layout) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(l.ViewsDir(), sparesName, testChannel))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// assertSpares checks that the spares of testChannel are sparesPerRelease
// of each version, whole and nothing else.
func assertSpares(t *testing.T, l Layout, versions ...string) {
	t.Helper()
	got := spareNames(t, l)
	var want []string
	for _, v := range versions {
		id, err := storeID(l.StoreDir(testChannel, v))
		if err != nil {
			t.Fatal(err)
		}
		for slot := range sparesPerRelease {
			name := spareName(v, id, slot)
			want = append(want, name)
			assertSameTree(t, l.StoreDir(testChannel, v), filepath.Join(l.ViewsDir(), sparesName, testChannel, name))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("spares: %v, want %v", got, want)
	}
}

// assertTrees checks how many view trees came from a spare and how many
// were linked on the spot.
func assertTrees(t *testing.T, v *Views, spare, linked int) {
	t.Helper()
	gotSpare := testutil.ToFloat64(v.spares.trees.WithLabelValues("spare"))
	gotLinked := testutil.ToFloat64(v.spares.trees.WithLabelValues("linked"))
	if gotSpare != float64(spare) || gotLinked != float64(linked) {
		t.Errorf("trees: %v from spares, %v linked; want %d and %d", gotSpare, gotLinked, spare, linked)
	}
}

func TestSpareTakenByNextView(t *testing.T) {
	v, l := newSpareViews(t)
	mustCreate(t, v, spec("vol-1", "pod-a"), "v1") // no spare yet: linked, and one prepared
	v.spares.waitIdle()
	assertTrees(t, v, 0, 1)
	assertSpares(t, l, "v1")
	info := mustCreate(t, v, spec("vol-2", "pod-b"), "v1")
	assertTrees(t, v, 1, 1)
	assertCurrent(t, l, info, "v1")
	assertNoTemps(t, info.Path)
	v.spares.waitIdle()
	assertSpares(t, l, "v1") // made up again
	// A flip to a release without a spare links it and prepares one; the
	// flip back takes the one of v1.
	assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v2"), "v2")
	v.spares.waitIdle()
	assertTrees(t, v, 1, 2)
	if err := v.Prune("vol-1", "pod-a"); err != nil {
		t.Fatal(err)
	}
	assertCurrent(t, l, mustFlip(t, v, "vol-1", "pod-a", "v1"), "v1")
	assertTrees(t, v, 2, 2)
	v.spares.waitIdle()
	assertSpares(t, l, "v1", "v2")
}

// TestSpareOfReplacedRelease: a release removed from the store and stored
// again (other files under the same version) never gets the old spare.
func TestSpareOfReplacedRelease(t *testing.T) {
	v, l := newSpareViews(t)
	v.PrepareSpare(testChannel, "v1")
	v.spares.waitIdle()
	assertSpares(t, l, "v1")
	old := l.StoreDir(testChannel, "v1")
	if err := os.Rename(old, old+".gone"); err != nil {
		t.Fatal(err)
	}
	storeRelease(t, l, testChannel, "v1", 3)
	info := mustCreate(t, v, spec("vol-1", "pod-a"), "v1")
	assertTrees(t, v, 0, 1)
	assertCurrent(t, l, info, "v1") // the 3 new files, not the 20 old ones
	v.spares.waitIdle()
	if err := v.PruneSpares(); err != nil {
		t.Fatal(err)
	}
	assertSpares(t, l, "v1") // of the new store directory only
}

// TestPruneSpares: spares of releases gone from the store, and what a
// crash left half-built, are removed; the others stay.
func TestPruneSpares(t *testing.T) {
	v, l := newSpareViews(t)
	v.PrepareSpare(testChannel, "v1")
	v.PrepareSpare(testChannel, "v2")
	v.PrepareSpare(testChannel, "v3") // not stored: nothing
	v.spares.waitIdle()
	assertSpares(t, l, "v1", "v2")
	dir := filepath.Join(l.ViewsDir(), sparesName, testChannel)
	mkdir(t, dir, buildPrefix+"v9", "ann")
	mkdir(t, dir, prunePrefix+"v8@1-2")
	if err := os.RemoveAll(l.StoreDir(testChannel, "v2")); err != nil {
		t.Fatal(err)
	}
	if err := v.PruneSpares(); err != nil {
		t.Fatal(err)
	}
	assertSpares(t, l, "v1")
	if _, err := v.List(); err != nil {
		t.Errorf("List with spares on disk: %v", err)
	}
	if err := os.RemoveAll(l.StoreDir(testChannel, "v1")); err != nil {
		t.Fatal(err)
	}
	if err := v.PruneSpares(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the channel's spare directory outlived its last spare: %v", err)
	}
}

// TestSpareHeld: the spare is linked while its release is held, and not
// at all when the hold is refused (the release left the store).
func TestSpareHeld(t *testing.T) {
	v, l := newTestViews(t)
	held := map[string]int{}
	err := v.EnableSpares(SpareOptions{Hold: func(_, version string) (func(), error) {
		if version == "v2" {
			return nil, os.ErrNotExist
		}
		held[version]++
		return func() { held[version]-- }, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	v.PrepareSpare(testChannel, "v1")
	v.PrepareSpare(testChannel, "v2")
	v.spares.waitIdle()
	assertSpares(t, l, "v1")
	if held["v1"] != 0 {
		t.Errorf("v1 still held %d times", held["v1"])
	}
}
