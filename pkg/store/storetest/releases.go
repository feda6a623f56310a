package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

func testPublish(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "pub")
	r1 := publish(t, s, sampleRelease("pub", "2019-12-15T00-00-00", 5), true)
	r2 := publish(t, s, sampleRelease("pub", "2019-12-16T00-00-00", 5), false)
	if r1.Seq != 1 || r2.Seq != 2 {
		t.Fatalf("seqs = %d, %d; want 1, 2", r1.Seq, r2.Seq)
	}
	if h := head(t, s, "pub"); h != r1.Version {
		t.Fatalf("head = %s, want %s (second publish was --no-promote)", h, r1.Version)
	}
	_, _, err := s.Publish(ctx, sampleRelease("pub", r1.Version, 1), true)
	wantErr(t, "duplicate version", err, store.ErrExists)
	_, _, err = s.Publish(ctx, sampleRelease("nochannel", "v1", 1), true)
	wantErr(t, "unknown channel", err, store.ErrNotFound)
	bad := sampleRelease("pub", "v-bad", 1)
	bad.Datasets[0].Manifest.Files[0].Path = "../escape"
	_, _, err = s.Publish(ctx, bad, true)
	wantErr(t, "traversal path", err, release.ErrInvalid)

	list, err := s.ListReleases(ctx, "pub")
	if err != nil || len(list) != 2 || list[0].Version != r1.Version || list[1].Version != r2.Version {
		t.Fatalf("ListReleases = %v, %v; want r1, r2 in publish order", list, err)
	}
	if list[0].Files != 6 || list[0].Datasets[0].Files != 5 {
		t.Fatalf("summary counts = %+v", list[0])
	}
	full, err := s.GetManifest(ctx, "pub", r1.Version)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full, r1) {
		t.Fatalf("GetManifest = %+v\nwant %+v", full, r1)
	}
	_, err = s.GetRelease(ctx, "pub", "nope")
	wantErr(t, "GetRelease(missing)", err, store.ErrNotFound)
	ch, _ := s.GetChannel(ctx, "pub")
	if ch.ReleaseCount != 2 {
		t.Fatalf("channel release count = %d, want 2", ch.ReleaseCount)
	}
}

// testLargeManifest publishes a manifest far over Consul's 512 KiB value
// limit even after compression, so it must be chunked and reassembled.
func testLargeManifest(t *testing.T, s *store.Store) {
	newChannel(t, s, "big")
	rel := sampleRelease("big", "v1", 1)
	rng := rand.New(rand.NewPCG(1, 2))
	files := make([]release.File, 30000)
	for i := range files {
		// Random names and ETags defeat gzip, as real hashes do.
		files[i] = release.File{
			Path: fmt.Sprintf("shard-%d/%016x-%016x.idx", i%100, rng.Uint64(), rng.Uint64()),
			Size: rng.Int64N(1 << 40),
			ETag: fmt.Sprintf("\"%016x%016x\"", rng.Uint64(), rng.Uint64()),
		}
	}
	rel.Datasets[0].Manifest.Files = files
	want := publish(t, s, rel, true)
	got, err := s.GetManifest(ctxT(t), "big", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("large manifest did not round-trip")
	}
}

func testDeleteRelease(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "del")
	publish(t, s, sampleRelease("del", "v1", 2), true)
	publish(t, s, sampleRelease("del", "v2", 2), true)
	err := s.DeleteRelease(ctx, "del", "v2", nil)
	wantErr(t, "delete head", err, store.ErrProtected)
	inUse := errors.New("in use by node-1")
	err = s.DeleteRelease(ctx, "del", "v1", func(release.Channel) error { return inUse })
	wantErr(t, "delete refused by guard", err, inUse)
	if err := s.DeleteRelease(ctx, "del", "v1", nil); err != nil {
		t.Fatalf("DeleteRelease(v1): %v", err)
	}
	_, err = s.GetManifest(ctx, "del", "v1")
	wantErr(t, "manifest after delete", err, store.ErrNotFound)
	kvs, err := s.Backend().List(ctx, "manifests/del/v1/")
	if err != nil || len(kvs) != 0 {
		t.Fatalf("manifest chunks left after delete: %d (%v)", len(kvs), err)
	}
	err = s.DeleteRelease(ctx, "del", "v1", nil)
	wantErr(t, "delete twice", err, store.ErrNotFound)
	// A deleted version can be published again.
	publish(t, s, sampleRelease("del", "v1", 1), false)
}

func testDeleteChannel(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "gone")
	newChannel(t, s, "gone-too")
	publish(t, s, sampleRelease("gone", "v1", 2), true)
	publish(t, s, sampleRelease("gone-too", "v1", 2), true)
	inUse := errors.New("volumes use it")
	err := s.DeleteChannel(ctx, "gone", func(release.Channel) error { return inUse })
	wantErr(t, "delete refused by guard", err, inUse)
	if err := s.DeleteChannel(ctx, "gone", nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetChannel(ctx, "gone")
	wantErr(t, "channel after delete", err, store.ErrNotFound)
	for _, prefix := range []string{"releases/gone/", "manifests/gone/"} {
		if kvs, _ := s.Backend().List(ctx, prefix); len(kvs) != 0 {
			t.Fatalf("%d keys left under %s", len(kvs), prefix)
		}
	}
	// A channel whose name extends the deleted one's is untouched.
	if _, err := s.GetManifest(ctx, "gone-too", "v1"); err != nil {
		t.Fatalf("gone-too damaged by deleting gone: %v", err)
	}
	// Recreating the name starts empty.
	newChannel(t, s, "gone")
	if rels, _ := s.ListReleases(ctx, "gone"); len(rels) != 0 {
		t.Fatalf("recreated channel has %d releases", len(rels))
	}
}

// testConcurrentPublishers races publishers on one channel: every release
// must be stored with a unique seq, and the head must be the release with
// the highest seq (the last promotion to commit).
func testConcurrentPublishers(t *testing.T, s *store.Store) {
	const writers, each = 6, 8
	newChannel(t, s, "race")
	ctx := ctxT(t)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins = map[string]int{}
	)
	errs := make(chan error, 2*writers*each)
	// Each writer publishes its own versions; an extra racer publishes w0's
	// versions too, so each of those is contested by two publishers.
	run := func(prefix string) {
		defer wg.Done()
		for i := range each {
			v := fmt.Sprintf("%s-%d", prefix, i)
			_, _, err := s.Publish(ctx, sampleRelease("race", v, 2), true)
			switch {
			case err == nil:
				mu.Lock()
				wins[v]++
				mu.Unlock()
			case !errors.Is(err, store.ErrExists):
				errs <- err
			}
		}
	}
	for w := range writers {
		wg.Add(1)
		go run(fmt.Sprintf("w%d", w))
	}
	wg.Add(1)
	go run("w0")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("publish: %v", err)
	}
	for v, n := range wins {
		if n != 1 {
			t.Errorf("version %s published %d times", v, n)
		}
	}
	if len(wins) != writers*each {
		t.Errorf("%d distinct versions published, want %d", len(wins), writers*each)
	}
	checkRaceOutcome(ctx, t, s, writers*each)
}

func checkRaceOutcome(ctx context.Context, t *testing.T, s *store.Store, want int) {
	t.Helper()
	rels, err := s.ListReleases(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != want {
		t.Fatalf("%d releases stored, want %d", len(rels), want)
	}
	for i, r := range rels {
		if r.Seq != uint64(i+1) {
			t.Fatalf("release %d has seq %d: seqs must be 1..%d without gaps or repeats", i, r.Seq, want)
		}
		if _, err := s.GetManifest(ctx, "race", r.Version); err != nil {
			t.Fatalf("manifest of %s: %v", r.Version, err)
		}
	}
	if h := head(t, s, "race"); h != rels[len(rels)-1].Version {
		t.Fatalf("head = %s, want the last committed release %s", h, rels[len(rels)-1].Version)
	}
}
