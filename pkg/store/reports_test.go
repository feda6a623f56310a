package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// gatedBackend holds every Txn until the test opens its gate, and counts
// the Txns and ops it passed on to the real backend.
type gatedBackend struct {
	Backend
	gate chan struct{}

	mu        sync.Mutex
	txns, ops int
}

func (g *gatedBackend) Txn(ctx context.Context, ops []Op) error {
	<-g.gate
	g.mu.Lock()
	g.txns++
	g.ops += len(ops)
	g.mu.Unlock()
	return g.Backend.Txn(ctx, ops)
}

// TestReportsShareTransactions: reports that arrive while a transaction
// is under way are written together in the next one, up to the batch
// limit, and a node's newer report replaces its queued one.
func TestReportsShareTransactions(t *testing.T) {
	bolt, err := OpenBolt(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bolt.Close() })
	g := &gatedBackend{Backend: bolt, gate: make(chan struct{})}
	s := New(g)
	ctx := t.Context()

	put := func(node string, done int64) error {
		return s.PutNodeStatus(ctx, release.NodeStatus{Node: node, Releases: []release.Progress{
			{Channel: "c", Version: "v1", State: release.StateDownloading, BytesDone: done, BytesTotal: 10},
		}})
	}
	queued := func() int {
		s.reports.mu.Lock()
		defer s.reports.mu.Unlock()
		return len(s.reports.order)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*maxReportBatch)
	// The first report's transaction blocks at the gate ...
	wg.Go(func() { errs <- put("node-first", 1) })
	waitFor(t, func() bool { s.reports.mu.Lock(); defer s.reports.mu.Unlock(); return s.reports.txns == 1 })
	// ... while maxReportBatch+10 others queue, node-0 twice.
	wg.Go(func() { errs <- put("node-0", 1) })
	waitFor(t, func() bool { return queued() == 1 })
	for i := range maxReportBatch + 10 {
		wg.Go(func() { errs <- put(fmt.Sprintf("node-%d", i), 2) })
	}
	waitFor(t, func() bool { return queued() == maxReportBatch+10 })
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if g.txns != 3 || g.ops != maxReportBatch+11 {
		t.Errorf("%d reports of %d nodes took %d transactions of %d ops in all, want 3 of %d (1, then batches of %d and 10)",
			maxReportBatch+12, maxReportBatch+11, g.txns, g.ops, maxReportBatch+11, maxReportBatch)
	}
	st, err := s.GetNodeStatus(ctx, "node-0")
	if err != nil || st.Releases[0].BytesDone != 2 {
		t.Errorf("node-0 = %+v, %v; want its newer report (2 bytes done)", st.Releases, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
	}
}
