package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/store"
)

// runBackend checks the Backend contract itself: transaction conditions,
// tree deletes, Wait and Campaign.
func runBackend(t *testing.T, h Harness) {
	t.Run("TxnConditions", func(t *testing.T) { testTxnConditions(t, h.Open(t).Backend()) })
	t.Run("DeleteTreeScope", func(t *testing.T) { testDeleteTreeScope(t, h.Open(t).Backend()) })
	t.Run("Wait", func(t *testing.T) { testBackendWait(t, h.Open(t).Backend()) })
	t.Run("Campaign", func(t *testing.T) { testCampaign(t, h.Open(t).Backend()) })
}

func put(key, val string) store.Op {
	return store.Op{Kind: store.OpPut, Key: key, Value: []byte(val)}
}

func get(t *testing.T, b store.Backend, key string) store.KV {
	t.Helper()
	kv, err := b.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return kv
}

func testTxnConditions(t *testing.T, b store.Backend) {
	ctx := ctxT(t)
	if err := b.Txn(ctx, []store.Op{put("t/a", "1"), put("t/b", "1")}); err != nil {
		t.Fatalf("initial Txn: %v", err)
	}
	a := get(t, b, "t/a")
	if string(a.Value) != "1" || a.Version == 0 {
		t.Fatalf("Get(t/a) = %q version %d, want \"1\" and a version", a.Value, a.Version)
	}
	cases := []struct {
		name     string
		ops      []store.Op
		conflict string // key named by the conflict, "" for success
	}{
		{"put absent on existing key", []store.Op{{Kind: store.OpPut, Key: "t/a", Value: []byte("x"), Cond: store.CondAbsent}}, "t/a"},
		{"put with stale version", []store.Op{{Kind: store.OpPut, Key: "t/a", Value: []byte("x"), Cond: store.CondVersion, Version: a.Version + 1000}}, "t/a"},
		{"version on missing key", []store.Op{{Kind: store.OpPut, Key: "t/missing", Value: []byte("x"), Cond: store.CondVersion, Version: a.Version}}, "t/missing"},
		{"check fails second op", []store.Op{put("t/c", "1"), {Kind: store.OpCheck, Key: "t/b", Cond: store.CondAbsent}}, "t/b"},
		{"delete with stale version", []store.Op{{Kind: store.OpDelete, Key: "t/b", Cond: store.CondVersion, Version: a.Version + 1000}}, "t/b"},
		{"put absent on new key", []store.Op{{Kind: store.OpPut, Key: "t/new", Value: []byte("n"), Cond: store.CondAbsent}}, ""},
		{"cas with current version", []store.Op{{Kind: store.OpPut, Key: "t/a", Value: []byte("2"), Cond: store.CondVersion, Version: a.Version}}, ""},
		{"check absent on missing key", []store.Op{{Kind: store.OpCheck, Key: "t/nothing", Cond: store.CondAbsent}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Txn(ctx, tc.ops)
			if tc.conflict == "" {
				if err != nil {
					t.Fatalf("Txn: %v, want success", err)
				}
				return
			}
			var ce *store.ConflictError
			if !errors.As(err, &ce) || ce.Key != tc.conflict || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("Txn: got %v, want a conflict on %s", err, tc.conflict)
			}
		})
	}
	// The failed transactions above must have written nothing.
	if _, err := b.Get(ctx, "t/c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("t/c written by a failed transaction: %v", err)
	}
	if got := get(t, b, "t/a"); string(got.Value) != "2" || got.Version <= a.Version {
		t.Fatalf("t/a = %q version %d after CAS, want \"2\" and version > %d", got.Value, got.Version, a.Version)
	}
}

func testDeleteTreeScope(t *testing.T, b store.Backend) {
	ctx := ctxT(t)
	if err := b.Txn(ctx, []store.Op{put("d/a/1", "x"), put("d/a/2", "x"), put("d/ab/1", "x"), put("d/a", "x")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Txn(ctx, []store.Op{{Kind: store.OpDeleteTree, Key: "d/a/"}}); err != nil {
		t.Fatal(err)
	}
	kvs, err := b.List(ctx, "d/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	if len(keys) != 2 || keys[0] != "d/a" || keys[1] != "d/ab/1" {
		t.Fatalf("after DeleteTree(d/a/): keys %v, want [d/a d/ab/1]", keys)
	}
}

func testBackendWait(t *testing.T, b store.Backend) {
	ctx := ctxT(t)
	idx, err := b.Wait(ctx, "w/", 0)
	if err != nil || idx == 0 {
		t.Fatalf("Wait(after=0) = %d, %v; want a current index at once", idx, err)
	}
	done := make(chan uint64, 1)
	go func() {
		for {
			next, err := b.Wait(ctx, "w/", idx)
			if err != nil {
				close(done)
				return
			}
			if next > idx {
				done <- next
				return
			}
		}
	}()
	if err := b.Txn(ctx, []store.Op{put("w/k", "v")}); err != nil {
		t.Fatal(err)
	}
	select {
	case next, ok := <-done:
		if !ok || next <= idx {
			t.Fatalf("Wait returned %d (ok=%t), want > %d", next, ok, idx)
		}
	case <-ctx.Done():
		t.Fatal("Wait never saw the write")
	}
	// A cancelled context ends a Wait that has nothing to report.
	cur, _ := b.Wait(ctx, "w/", 0)
	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	for {
		_, err := b.Wait(cctx, "w/", cur)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait after cancel: %v, want context.Canceled", err)
			}
			break
		}
	}
}

func testCampaign(t *testing.T, b store.Backend) {
	ctx := ctxT(t)
	first, err := b.Campaign(ctx, "suite")
	if err != nil {
		t.Fatalf("first Campaign: %v", err)
	}
	// A second campaigner must wait while the first leads.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if l, err := b.Campaign(short, "suite"); err == nil {
		_ = l.Resign(ctx)
		t.Fatal("second Campaign won while the first still leads")
	}
	got := make(chan store.Leadership, 1)
	go func() {
		l, err := b.Campaign(ctx, "suite")
		if err == nil {
			got <- l
		}
		close(got)
	}()
	if err := first.Resign(ctx); err != nil {
		t.Fatalf("Resign: %v", err)
	}
	select {
	case <-first.Lost():
	case <-ctx.Done():
		t.Fatal("Lost not closed after Resign")
	}
	second, ok := <-got
	if !ok {
		t.Fatal("second Campaign failed after the first resigned")
	}
	_ = second.Resign(ctx)
}
