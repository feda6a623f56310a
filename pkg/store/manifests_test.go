package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestManifestCache: manifests are kept by digest within the byte budget,
// least recently used out first; one over the size limit is never kept;
// a failed read is not kept; concurrent misses share one read.
func TestManifestCache(t *testing.T) {
	var c manifestCache
	reads := map[string]int{}
	get := func(digest string, size int) {
		t.Helper()
		ds, err := c.get(digest, func() ([]release.Dataset, int, error) {
			reads[digest]++
			return []release.Dataset{{Name: digest}}, size, nil
		})
		if err != nil || len(ds) != 1 || ds[0].Name != digest {
			t.Fatalf("get(%s) = %+v, %v", digest, ds, err)
		}
	}
	quarter := manifestCacheBytes / 4
	for _, d := range []string{"a", "b", "c", "d"} {
		get(d, quarter)
	}
	get("a", quarter) // a is now the most recent: b is the oldest
	get("e", quarter) // evicts b
	get("big", manifestCacheMax+1)
	get("big", manifestCacheMax+1)
	for _, d := range []string{"a", "c", "d", "e", "b"} {
		get(d, quarter)
	}
	want := map[string]int{"a": 1, "b": 2, "c": 1, "d": 1, "e": 1, "big": 2}
	if fmt.Sprint(reads) != fmt.Sprint(want) {
		t.Errorf("reads per manifest %v, want %v", reads, want)
	}

	failed := 0
	for range 2 {
		_, err := c.get("bad", func() ([]release.Dataset, int, error) { failed++; return nil, 0, errors.New("damaged") })
		if err == nil {
			t.Fatal("a failed read returned no error")
		}
	}
	if failed != 2 {
		t.Errorf("a failed read was kept: %d reads for 2 gets, want 2", failed)
	}
}

func TestManifestCacheSharesConcurrentReads(t *testing.T) {
	var c manifestCache
	var reads atomic.Int32
	gate := make(chan struct{})
	var started, wg sync.WaitGroup
	for range 20 {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			_, err := c.get("m", func() ([]release.Dataset, int, error) {
				reads.Add(1)
				<-gate
				return []release.Dataset{{Name: "m"}}, 1, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	started.Wait()
	// The first read blocks at the gate. The pause lets the other callers
	// reach get meanwhile (without sharing they would each read); it
	// cannot make a correct cache fail: a late caller finds the cache.
	waitFor(t, func() bool { return reads.Load() >= 1 })
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("20 concurrent gets read the manifest %d times, want 1", n)
	}
}
