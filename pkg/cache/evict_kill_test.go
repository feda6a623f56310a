package cache_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestKilledEvictionLeavesWholeReleases SIGKILLs a downloader while it
// evicts releases of 1,500 files each, over and over until its download
// is done: after every kill, each release in store/ has its record and
// every file of it, byte for byte; a restart finishes the eviction and the
// download, and the needed release stays.
func TestKilledEvictionLeavesWholeReleases(t *testing.T) {
	e := newS3Env(t)
	root := mountTmpfs(t, "64m")
	const files = 1500
	many := map[string][]byte{}
	for i := range files {
		name := fmt.Sprintf("%04d", i)
		many["d/"+name] = content("evict-"+name, 1024)
		e.put(t, "evict/"+name, bytes.NewReader(many["d/"+name]), "")
	}
	big := map[string][]byte{"d/f": content("evict-new", 10<<20)}
	e.put(t, "evict-new/f", bytes.NewReader(big["d/f"]), "")
	// Four releases of 1,500 pages each (~24 MiB of the 64), dated in use.
	c := e.newCache(t, root)
	old := []string{"old-a", "old-b", "old-c"}
	for i, ch := range append(append([]string{}, old...), "keep") {
		if err := ensure(t, c, e.publish(t, ch, "v1", 1, map[string]string{"d": "evict/"})); err != nil {
			t.Fatal(err)
		}
		setUse(t, c.Layout(), ch+"/v1", time.Now().Add(-time.Duration(10-i)*time.Hour))
	}
	next := e.publish(t, "new", "v1", 1, map[string]string{"d": "evict-new/"})
	// 24 + 10 MiB pass 30%, and still do with one or two old releases
	// gone: each run, killed or not, evicts until every old one is gone.
	jobFile := filepath.Join(t.TempDir(), "job.json")
	raw, _ := json.Marshal(childJob{Root: root, Endpoint: e.proxy.URL, Release: next, High: 30, Low: 10, Keep: []string{"keep/v1"}})
	if err := os.WriteFile(jobFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	layout := cache.Layout{Root: root}
	want := func(channel string) map[string][]byte {
		if channel == "new" {
			return big
		}
		return many
	}
	kills, midDelete := 0, 0
	for done := false; !done; {
		if kills > 20 {
			t.Fatal("the download never finished")
		}
		var present []string
		for _, ch := range old {
			if storeHas(layout, release.Release{Channel: ch, Version: "v1"}) {
				present = append(present, ch)
			}
		}
		var kill func() bool
		if len(present) > 0 { // else let the download finish
			before := trashNames(layout)
			kill = func() bool { return evicting(layout, present, files, before) }
		}
		done = runChildFor(t, jobFile, kill)
		if !done {
			kills++
			if trashHolds(layout) {
				midDelete++
			}
		}
		checkWholeReleases(t, layout, want)
	}
	if kills == 0 {
		t.Fatal("no kill landed during the eviction; the test did not exercise it")
	}
	t.Logf("%d kills, %d of them while a tree was being deleted", kills, midDelete)
	c = e.newCache(t, root) // a restart: the trash goes
	checkPresence(t, c, map[string]bool{"old-a/v1": false, "old-b/v1": false, "old-c/v1": false, "keep/v1": true, "new/v1": true})
	checkStored(t, c, next, big)
	if trashHolds(layout) {
		t.Error("tmp/.trash still holds a tree after a restart")
	}
}

// evicting reports an eviction under way: a tree in tmp/.trash that was
// not there before, or a release of channels missing from store/ or with
// fewer files than it had.
func evicting(l cache.Layout, channels []string, files int, before map[string]bool) bool {
	for name := range trashNames(l) {
		if !before[name] {
			return true
		}
	}
	for _, ch := range channels {
		entries, err := os.ReadDir(filepath.Join(l.StoreDir(ch, "v1"), "d"))
		if err != nil || len(entries) < files {
			return true
		}
	}
	return false
}

func trashNames(l cache.Layout) map[string]bool {
	entries, _ := os.ReadDir(filepath.Join(l.Root, "tmp", ".trash"))
	out := map[string]bool{}
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

func trashHolds(l cache.Layout) bool { return len(trashNames(l)) > 0 }

// checkWholeReleases: every release in store/ has its record in meta/,
// and exactly the record's files, each with the bytes published.
func checkWholeReleases(t *testing.T, l cache.Layout, want func(channel string) map[string][]byte) {
	t.Helper()
	channels, err := os.ReadDir(filepath.Join(l.Root, "store"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range channels {
		versions, err := os.ReadDir(l.ChannelStoreDir(ch.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions {
			raw, err := os.ReadFile(l.MetaFile(ch.Name(), v.Name()))
			var rel release.Release
			if err == nil {
				err = json.Unmarshal(raw, &rel)
			}
			if err != nil {
				t.Fatalf("%s/%s is in store/ without a readable record: %v", ch.Name(), v.Name(), err)
			}
			n := 0
			for _, ds := range rel.Datasets {
				for _, f := range ds.Manifest.Files {
					got, err := os.ReadFile(filepath.Join(l.StoreDir(ch.Name(), v.Name()), ds.Name, filepath.FromSlash(f.Path)))
					if err != nil || !bytes.Equal(got, want(ch.Name())[ds.Name+"/"+f.Path]) {
						t.Fatalf("%s/%s in store/ lacks %s/%s or holds other bytes: %v", ch.Name(), v.Name(), ds.Name, f.Path, err)
					}
					n++
				}
			}
			have := 0
			_ = filepath.WalkDir(l.StoreDir(ch.Name(), v.Name()), func(_ string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					have++
				}
				return nil
			})
			if have != n {
				t.Fatalf("%s/%s in store/ holds %d files, its record %d", ch.Name(), v.Name(), have, n)
			}
		}
	}
}
