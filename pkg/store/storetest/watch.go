package storetest

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

func testWatch(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "watched")
	idx, err := s.WatchChannels(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan uint64, 1)
	go func() {
		for {
			next, err := s.WatchChannels(ctx, idx)
			if err != nil {
				close(seen)
				return
			}
			if next > idx {
				seen <- next
				return
			}
		}
	}()
	publish(t, s, sampleRelease("watched", "v1", 1), true)
	if next, ok := <-seen; !ok || next <= idx {
		t.Fatalf("WatchChannels did not report the publish (got %d, ok=%t, from %d)", next, ok, idx)
	}
}

func testSweep(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "sweep")
	publish(t, s, sampleRelease("sweep", "v1", 2), true)
	old := time.Now().Add(-2 * time.Hour).Unix()
	fresh := time.Now().Unix()
	orphans := []store.Op{
		{Kind: store.OpPut, Key: "manifests/sweep/v2/" + itoa(old) + "-aaaa/000000", Value: []byte("x")},
		{Kind: store.OpPut, Key: "manifests/sweep/v3/" + itoa(fresh) + "-bbbb/000000", Value: []byte("x")},
	}
	if err := s.Backend().Txn(ctx, orphans); err != nil {
		t.Fatal(err)
	}
	n, err := s.SweepManifests(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("SweepManifests = %d, %v; want the one old orphan removed", n, err)
	}
	kvs, _ := s.Backend().List(ctx, "manifests/sweep/")
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	joined := strings.Join(keys, " ")
	if strings.Contains(joined, "/v2/") || !strings.Contains(joined, "/v3/") || !strings.Contains(joined, "/v1/") {
		t.Fatalf("after sweep: %v; want v1 (live) and v3 (fresh) kept, v2 removed", keys)
	}
	if _, err := s.GetManifest(ctx, "sweep", "v1"); err != nil {
		t.Fatalf("live manifest damaged by sweep: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testNodes(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	st := release.NodeStatus{
		Node:       "node-1",
		ReportedAt: time.Now().UTC().Truncate(time.Second),
		Releases:   []release.Progress{{Channel: "c", Version: "v1", State: release.StateDownloading, BytesDone: 5, BytesTotal: 10}},
	}
	// Enough views to cross the compression threshold.
	for i := range 400 {
		st.Views = append(st.Views, release.View{VolumeID: "vol-" + itoa(int64(i)), PodUID: "uid-" + itoa(int64(i)), Channel: "c", Current: "v1"})
	}
	if err := s.PutNodeStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.PutNodeStatus(ctx, release.NodeStatus{Node: "node-0"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetNodeStatus(ctx, "node-1")
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("GetNodeStatus = %+v, %v", got, err)
	}
	all, err := s.ListNodeStatus(ctx)
	if err != nil || len(all) != 2 || all[0].Node != "node-0" {
		t.Fatalf("ListNodeStatus = %d entries, %v", len(all), err)
	}
	err = s.PutNodeStatus(ctx, release.NodeStatus{Node: "Bad Node"})
	wantErr(t, "bad node name", err, release.ErrInvalid)
	if err := s.DeleteNodeStatus(ctx, "node-0"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetNodeStatus(ctx, "node-0")
	wantErr(t, "deleted node", err, store.ErrNotFound)
	// Listing again after a change shows the change (reports are not
	// decoded again while unchanged).
	st.Releases[0].BytesDone = 10
	if err := s.PutNodeStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	all, err = s.ListNodeStatus(ctx)
	if err != nil || len(all) != 1 || !reflect.DeepEqual(all[0], st) {
		t.Fatalf("ListNodeStatus after an update and a delete = %+v, %v; want node-1's new report only", all, err)
	}
}

// testRestart checks that channels, releases, heads, pins and manifests
// survive closing and reopening the store.
func testRestart(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := ctxT(t)
	newChannel(t, s, "durable")
	publish(t, s, sampleRelease("durable", "v1", 3), true)
	publish(t, s, sampleRelease("durable", "v2", 3), true)
	before, _ := s.GetChannel(ctx, "durable")
	wantManifest, _ := s.GetManifest(ctx, "durable", "v2")

	s = h.Reopen(t, s)
	after, err := s.GetChannel(ctx, "durable")
	if err != nil || !reflect.DeepEqual(after, before) || after.Head != "v2" {
		t.Fatalf("after restart: %+v (%v), want %+v", after, err, before)
	}
	got, err := s.GetManifest(ctx, "durable", "v2")
	if err != nil || !reflect.DeepEqual(got, wantManifest) {
		t.Fatalf("manifest after restart: %v", err)
	}
	// Publishing continues the sequence where it stopped.
	r3 := publish(t, s, sampleRelease("durable", "v3", 1), true)
	if r3.Seq != 3 {
		t.Fatalf("seq after restart = %d, want 3", r3.Seq)
	}
	// Watches work on the reopened store.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := s.WatchChannels(wctx, 0); err != nil {
		t.Fatal(err)
	}
}

// testConcurrentReports: reports of many nodes at once (which the store
// group-commits) all land, each node's last one wins, and a delete queued
// behind a node's report is not undone by it.
func testConcurrentReports(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	const nodes, reports = 60, 5
	errs := make(chan error, nodes)
	for n := range nodes {
		go func() {
			name := "node-" + itoa(int64(n))
			for i := range reports {
				st := release.NodeStatus{Node: name, Releases: []release.Progress{{Channel: "c", Version: "v1", State: release.StateDownloading, BytesDone: int64(i + 1), BytesTotal: reports}}}
				if err := s.PutNodeStatus(ctx, st); err != nil {
					errs <- err
					return
				}
			}
			if n%2 == 1 {
				errs <- s.DeleteNodeStatus(ctx, name)
				return
			}
			errs <- nil
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListNodeStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != nodes/2 {
		t.Fatalf("%d nodes stored, want the %d not deleted", len(all), nodes/2)
	}
	for _, st := range all {
		if n, _ := strconv.Atoi(strings.TrimPrefix(st.Node, "node-")); n%2 == 1 {
			t.Errorf("deleted node %s is back", st.Node)
		}
		if len(st.Releases) != 1 || st.Releases[0].BytesDone != reports {
			t.Errorf("node %s: stored %+v, want its last report (%d bytes done)", st.Node, st.Releases, reports)
		}
	}
}
