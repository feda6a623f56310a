package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// mountTmpfs mounts a tmpfs of size (as mount's size= option) on a fresh
// directory: a small real filesystem whose use the test controls.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a tmpfs of %s at %s: %v", size, root, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	return root
}

// keepSet builds a Needed's tier map from "channel/version" names.
func keepSet(names ...string) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, n := range names {
		ch, v, _ := cutSlash(n)
		if out[ch] == nil {
			out[ch] = map[string]bool{}
		}
		out[ch][v] = true
	}
	return out
}

func cutSlash(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// storeRelease uploads one file of size bytes under its own prefix,
// publishes it as channel/version and stores it in c, then dates its last
// use at used.
func storeRelease(t *testing.T, e *s3Env, c *cache.Cache, name string, size int, used time.Time) release.Release {
	t.Helper()
	ch, v, _ := cutSlash(name)
	e.put(t, "budget/"+name+"/f", bytes.NewReader(content(name, size)), "")
	rel := e.publish(t, ch, v, 1, map[string]string{"d": "budget/" + name + "/"})
	if err := ensure(t, c, rel); err != nil {
		t.Fatalf("store %s: %v", name, err)
	}
	setUse(t, c.Layout(), name, used)
	return rel
}

// setUse dates a release's last use (the mtime of its record in meta/).
func setUse(t *testing.T, l cache.Layout, name string, used time.Time) {
	t.Helper()
	ch, v, _ := cutSlash(name)
	if err := os.Chtimes(l.MetaFile(ch, v), used, used); err != nil {
		t.Fatal(err)
	}
}

// newBudgetCache is newCache with a registry and a budget whose Needed
// answers with keep and quotas.
func newBudgetCache(t *testing.T, e *s3Env, root string, high, low int, needed *cache.Needed) (*cache.Cache, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{Endpoint: e.proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Root: root, Reader: r, PartSize: cache.MinPartSize, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetBudget(cache.Budget{HighWatermark: high, LowWatermark: low, Needed: func() (cache.Needed, error) { return *needed, nil }}); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

// checkPresence fails unless exactly the names in want are stored.
func checkPresence(t *testing.T, c *cache.Cache, want map[string]bool) {
	t.Helper()
	for name, stored := range want {
		ch, v, _ := cutSlash(name)
		if c.Stored(ch, v) != stored {
			t.Errorf("%s stored: %t, want %t", name, c.Stored(ch, v), stored)
		}
	}
}

// TestEvictionPastWatermark: a download past the high watermark evicts
// only releases nothing needs, the least recently used first, and stops
// at the low watermark: the release in a view's use, the head, the
// rollout target, the pinned one and a held one stay, however old their
// last use. A release that cannot fit even then fails with ErrNoSpace
// and takes nothing needed with it.
func TestEvictionPastWatermark(t *testing.T) {
	e := newS3Env(t)
	root := mountTmpfs(t, "64m")
	const mib = 1 << 20
	now := time.Now()
	needed := &cache.Needed{}
	c, reg := newBudgetCache(t, e, root, 55, 52, needed)
	// 8 releases of 4 MiB: 32 MiB of the 64.
	for i, name := range []string{"idx/inuse", "idx/pinned", "idx/target", "idx/head", "held/v1", "old/v1", "old/v2", "recent/v1"} {
		storeRelease(t, e, c, name, 4*mib, now.Add(-time.Duration(10-i)*time.Hour))
	}
	views := cache.NewViews(c.Layout())
	if _, err := views.Create(cache.ViewRecord{VolumeID: "vol", PodUID: "pod", Channel: "idx"}, "inuse"); err != nil {
		t.Fatal(err)
	}
	setUse(t, c.Layout(), "idx/inuse", now.Add(-20*time.Hour)) // the oldest use of all
	inUse, err := views.InUse()
	if err != nil {
		t.Fatal(err)
	}
	*needed = cache.Needed{Disk: keepSet("idx/pinned", "idx/target", "idx/head")}
	for v := range inUse["idx"] {
		needed.Disk["idx"][v] = true
	}
	unhold, err := c.Hold("held", "v1")
	if err != nil {
		t.Fatal(err)
	}
	defer unhold()

	// 32 + 8 MiB pass 55% of 64 (35.2): evict down to 52% (33.3): old/v1
	// then old/v2 (32 MiB then); recent/v1 stays.
	e.put(t, "budget/new/f", bytes.NewReader(content("new", 8*mib)), "")
	next := e.publish(t, "new", "v1", 1, map[string]string{"d": "budget/new/"})
	if err := ensure(t, c, next); err != nil {
		t.Fatalf("a download past the watermark with 8 MiB of unneeded releases stored: %v", err)
	}
	checkPresence(t, c, map[string]bool{"old/v1": false, "old/v2": false, "recent/v1": true, "new/v1": true,
		"idx/inuse": true, "idx/pinned": true, "idx/target": true, "idx/head": true, "held/v1": true})
	if got := counterValue(t, reg, "hydra_cache_evictions_total", "disk", "watermark"); got != 2 {
		t.Errorf("hydra_cache_evictions_total{disk,watermark} = %v, want 2", got)
	}
	if got := counterValue(t, reg, "hydra_cache_evicted_bytes_total", "disk", "watermark"); got != 8*mib {
		t.Errorf("hydra_cache_evicted_bytes_total{disk,watermark} = %v, want %d", got, 8*mib)
	}

	// 48 MiB cannot fit beside the 20 MiB needed or held, whatever goes:
	// the space error; what is needed or held stays.
	e.put(t, "budget/huge/f", bytes.NewReader(content("huge", 48*mib)), "")
	huge := e.publish(t, "huge", "v1", 1, map[string]string{"d": "budget/huge/"})
	if err := ensure(t, c, huge); !errors.Is(err, cache.ErrNoSpace) {
		t.Fatalf("a 48 MiB download beside 20 MiB needed on 64 MiB: %v, want ErrNoSpace", err)
	}
	checkPresence(t, c, map[string]bool{"huge/v1": false,
		"idx/inuse": true, "idx/pinned": true, "idx/target": true, "idx/head": true, "held/v1": true})
}

// TestEvictionForQuota: a download that would take its channel past its
// node quota evicts the channel's least recently used release nothing
// needs, and no other channel's; a release larger than the quota fails
// with ErrNoSpace and evicts nothing.
func TestEvictionForQuota(t *testing.T) {
	e := newS3Env(t)
	const mib = 1 << 20
	now := time.Now()
	needed := &cache.Needed{Disk: keepSet("q/head"), Quotas: map[string]int64{"q": 7 * mib}}
	// Watermarks of 100/99 on a real disk: only the quota evicts here.
	c, reg := newBudgetCache(t, e, t.TempDir(), 100, 99, needed)
	storeRelease(t, e, c, "other/v1", 2*mib, now.Add(-10*time.Hour))
	storeRelease(t, e, c, "q/head", 2*mib, now.Add(-9*time.Hour))
	storeRelease(t, e, c, "q/v1", 2*mib, now.Add(-3*time.Hour))
	storeRelease(t, e, c, "q/v2", 2*mib, now.Add(-2*time.Hour))

	// 6 + 2 MiB pass 7: q/v1 goes, the oldest unneeded of q.
	e.put(t, "budget/q/v3/f", bytes.NewReader(content("q/v3", 2*mib)), "")
	v3 := e.publish(t, "q", "v3", 1, map[string]string{"d": "budget/q/v3/"})
	if err := ensure(t, c, v3); err != nil {
		t.Fatal(err)
	}
	checkPresence(t, c, map[string]bool{"q/v1": false, "q/v2": true, "q/head": true, "q/v3": true, "other/v1": true})
	if got := counterValue(t, reg, "hydra_cache_evictions_total", "disk", "quota"); got != 1 {
		t.Errorf("hydra_cache_evictions_total{disk,quota} = %v, want 1", got)
	}

	e.put(t, "budget/q/big/f", bytes.NewReader(content("q/big", 8*mib)), "")
	big := e.publish(t, "q", "big", 1, map[string]string{"d": "budget/q/big/"})
	if err := ensure(t, c, big); !errors.Is(err, cache.ErrNoSpace) {
		t.Fatalf("an 8 MiB release of a channel with a 7 MiB quota: %v, want ErrNoSpace", err)
	}
	checkPresence(t, c, map[string]bool{"q/big": false, "q/v2": true, "q/head": true, "q/v3": true})
}

// TestNoEvictionWithoutBudget: a cache without a budget (hydra pull's)
// evicts nothing, whatever the filesystem's use: a release that does not
// fit fails with ErrNoSpace beside releases nothing needs.
func TestNoEvictionWithoutBudget(t *testing.T) {
	e := newS3Env(t)
	root := mountTmpfs(t, "16m")
	c := e.newCache(t, root)
	storeRelease(t, e, c, "old/v1", 8<<20, time.Now().Add(-time.Hour))
	e.put(t, "budget/nb/f", bytes.NewReader(content("nb", 10<<20)), "")
	rel := e.publish(t, "nb", "v1", 1, map[string]string{"d": "budget/nb/"})
	if err := ensure(t, c, rel); !errors.Is(err, cache.ErrNoSpace) {
		t.Fatalf("10 MiB beside 8 MiB on 16 MiB without a budget: %v, want ErrNoSpace", err)
	}
	checkPresence(t, c, map[string]bool{"old/v1": true})
}

// TestMemoryEviction: the RAM tier evicts the same way against its tmpfs:
// the least recently used release no memory view needs, not a held one,
// down to the low watermark; the disk copies stay.
func TestMemoryEviction(t *testing.T) {
	e := newS3Env(t)
	const mib = 1 << 20
	needed := &cache.Needed{Memory: keepSet("m/kept")}
	disk, reg := newBudgetCache(t, e, t.TempDir(), 100, 99, needed)
	needed.Disk = keepSet("m/held", "m/old", "m/recent", "m/kept", "m/new")
	root := filepath.Join(t.TempDir(), "ram")
	mem, err := cache.NewMemory(disk, root, 16*mib)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	now := time.Now()
	for i, v := range []string{"held", "old", "recent", "kept"} {
		name := "m/" + v
		e.put(t, "budget/"+name+"/f", bytes.NewReader(content(name, 2*mib)), "")
		rel := e.publish(t, "m", v, 1, map[string]string{"d": "budget/" + name + "/"})
		if err := mem.Ensure(t.Context(), rel); err != nil {
			t.Fatal(err)
		}
		setUse(t, mem.Layout(), name, now.Add(-time.Duration(10-i)*time.Hour))
	}
	unhold, err := mem.Hold("m", "held")
	if err != nil {
		t.Fatal(err)
	}
	defer unhold()
	// 8 + 2 MiB pass 60% of 16 (9.6): down to 55% (8.8): m/old goes.
	if err := disk.SetBudget(cache.Budget{HighWatermark: 60, LowWatermark: 55, Needed: func() (cache.Needed, error) { return *needed, nil }}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "budget/m/new/f", bytes.NewReader(content("m/new", 2*mib)), "")
	rel := e.publish(t, "m", "new", 1, map[string]string{"d": "budget/m/new/"})
	if err := mem.Ensure(t.Context(), rel); err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"held": true, "old": false, "recent": true, "kept": true, "new": true} {
		if mem.Stored("m", v) != want {
			t.Errorf("m/%s in RAM: %t, want %t", v, mem.Stored("m", v), want)
		}
		if !disk.Stored("m", v) {
			t.Errorf("m/%s left the disk store", v)
		}
	}
	if got := counterValue(t, reg, "hydra_cache_evictions_total", "memory", "watermark"); got != 1 {
		t.Errorf("hydra_cache_evictions_total{memory,watermark} = %v, want 1", got)
	}
}

// TestViewsRecordUse: linking a view to a release, flipping it and
// removing it date the releases' last use, which eviction orders by.
func TestViewsRecordUse(t *testing.T) {
	e := newS3Env(t)
	c := e.newCache(t, t.TempDir())
	old := time.Now().Add(-24 * time.Hour)
	storeRelease(t, e, c, "u/v1", 1024, old)
	storeRelease(t, e, c, "u/v2", 1024, old)
	views := cache.NewViews(c.Layout())
	used := func(name string) bool {
		ch, v, _ := cutSlash(name)
		fi, err := os.Stat(c.Layout().MetaFile(ch, v))
		return err == nil && fi.ModTime().After(old.Add(time.Hour))
	}
	for _, step := range []struct {
		what string
		do   func() error
		used []string
	}{
		{"create", func() error {
			_, err := views.Create(cache.ViewRecord{VolumeID: "vol", PodUID: "pod", Channel: "u"}, "v1")
			return err
		}, []string{"u/v1"}},
		{"flip", func() error { _, err := views.Flip("vol", "pod", "v2"); return err }, []string{"u/v1", "u/v2"}},
		{"remove", func() error { return views.Remove("vol", "pod") }, []string{"u/v2"}},
	} {
		setUse(t, c.Layout(), "u/v1", old)
		setUse(t, c.Layout(), "u/v2", old)
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		for _, name := range []string{"u/v1", "u/v2"} {
			want := false
			for _, u := range step.used {
				want = want || u == name
			}
			if used(name) != want {
				t.Errorf("%s: %s used %t, want %t", step.what, name, used(name), want)
			}
		}
	}
}

// counterValue reads a counter of a registry by its tier and reason.
func counterValue(t *testing.T, reg *prometheus.Registry, name, tier, reason string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["tier"] == tier && got["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{tier=%q,reason=%q}", name, tier, reason)
	return 0
}

// TestEvictionRereadsNeededAfterAUse: a view linked to a release after
// the node read what it needs (a hold taken and let go meanwhile) makes
// it read that again before removing anything, so the release the view
// now uses stays; the release nothing uses still goes.
func TestEvictionRereadsNeededAfterAUse(t *testing.T) {
	e := newS3Env(t)
	root := mountTmpfs(t, "16m")
	const mib = 1 << 20
	c := e.newCache(t, root)
	storeRelease(t, e, c, "race/v1", 4*mib, time.Now().Add(-2*time.Hour))
	storeRelease(t, e, c, "old/v1", 4*mib, time.Now().Add(-time.Hour))
	reads := 0
	needed := func() (cache.Needed, error) {
		reads++
		if reads == 1 {
			// A view is linked to race/v1 while the answer is on its way.
			done, err := c.Hold("race", "v1")
			if err != nil {
				return cache.Needed{}, err
			}
			done()
			return cache.Needed{}, nil
		}
		return cache.Needed{Disk: keepSet("race/v1")}, nil
	}
	if err := c.SetBudget(cache.Budget{HighWatermark: 50, LowWatermark: 10, Needed: needed}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "budget/race-new/f", bytes.NewReader(content("race-new", 4*mib)), "")
	if err := ensure(t, c, e.publish(t, "new", "v1", 1, map[string]string{"d": "budget/race-new/"})); err != nil {
		t.Fatal(err)
	}
	checkPresence(t, c, map[string]bool{"race/v1": true, "old/v1": false, "new/v1": true})
	if reads < 2 {
		t.Errorf("what the node needs was read %d times, want it read again after the use", reads)
	}
}

// TestEvictionDropsSpares: an evicted release's spare view trees go with
// it: they are hardlinks to its files, and would keep its blocks, so the
// node would evict more than the watermark asks.
func TestEvictionDropsSpares(t *testing.T) {
	e := newS3Env(t)
	root := mountTmpfs(t, "16m")
	const mib = 1 << 20
	c := e.newCache(t, root)
	storeRelease(t, e, c, "sp/v1", 4*mib, time.Now().Add(-2*time.Hour))
	storeRelease(t, e, c, "keep/v1", 4*mib, time.Now().Add(-time.Hour))
	// Two spare trees of sp/v1, named as Views' spares are, linked by hand:
	// Views' own linker ends its OS thread when done, and MinIO, started
	// with Pdeathsig, dies with the thread that started it.
	spares := filepath.Join(c.Layout().ViewsDir(), ".spares", "sp")
	for slot := range 2 {
		dir := filepath.Join(spares, fmt.Sprintf("v1@test-%d", slot), "d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(filepath.Join(c.Layout().StoreDir("sp", "v1"), "d", "f"), filepath.Join(dir, "f")); err != nil {
			t.Fatal(err)
		}
	}
	needed := cache.Needed{Disk: keepSet("keep/v1")}
	if err := c.SetBudget(cache.Budget{HighWatermark: 50, LowWatermark: 40, Needed: func() (cache.Needed, error) { return needed, nil }}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "budget/sp-new/f", bytes.NewReader(content("sp-new", 2*mib)), "")
	if err := ensure(t, c, e.publish(t, "new", "v1", 1, map[string]string{"d": "budget/sp-new/"})); err != nil {
		t.Fatal(err)
	}
	checkPresence(t, c, map[string]bool{"sp/v1": false, "keep/v1": true, "new/v1": true})
	if entries, _ := os.ReadDir(spares); len(entries) > 0 {
		t.Errorf("spare trees of the evicted sp/v1 are left: %v", entries)
	}
	if use, err := usedBytes(root); err != nil || use > 7*mib {
		t.Errorf("%d bytes in use after evicting sp/v1 beside 6 MiB of releases (%v): its blocks were not freed", use, err)
	}
}

func usedBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Blocks-st.Bfree) * st.Bsize, nil //nolint:gosec // G115: a real filesystem's counts
}
