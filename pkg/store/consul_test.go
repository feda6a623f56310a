package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// consulGuard only keeps a broken test from hanging; no test asserts time.
const consulGuard = 60 * time.Second

// TestConsulBackend runs every check of the Consul backend against one real
// dev agent; each subtest works under its own random prefix.
func TestConsulBackend(t *testing.T) {
	agent := testenv.StartConsul(t)
	t.Run("Open", func(t *testing.T) { testConsulOpen(t, agent) })
	t.Run("GetList", func(t *testing.T) { testConsulGetList(t, agent) })
	t.Run("Txn", func(t *testing.T) { testConsulTxn(t, agent) })
	t.Run("TxnConflictKey", func(t *testing.T) { testConsulTxnConflictKey(t, agent) })
	t.Run("DeleteTree", func(t *testing.T) { testConsulDeleteTree(t, agent) })
	t.Run("TxnRefused", func(t *testing.T) { testConsulTxnRefused(t, agent) })
	t.Run("ConsulRefuses", func(t *testing.T) { testConsulServerRefuses(t, agent) })
	t.Run("Limits", func(t *testing.T) { testConsulLimits(t, agent) })
	t.Run("Wait", func(t *testing.T) { testConsulWait(t, agent) })
	t.Run("Campaign", func(t *testing.T) { testConsulCampaign(t, agent) })
	t.Run("CampaignCancel", func(t *testing.T) { testConsulCampaignCancel(t, agent) })
	t.Run("SessionDestroyed", func(t *testing.T) { testConsulSessionDestroyed(t, agent) })
	t.Run("CloseResigns", func(t *testing.T) { testConsulCloseResigns(t, agent) })
}

// openConsul opens a backend on a fresh random prefix, or on prefix[0].
func openConsul(t *testing.T, agent *testenv.Consul, prefix ...string) *ConsulBackend {
	t.Helper()
	p := fmt.Sprintf("hydra-test-%016x", rand.Uint64())
	if len(prefix) > 0 {
		p = prefix[0]
	}
	b, err := OpenConsul(guardCtx(t), agent.Addr, p, "")
	if err != nil {
		t.Fatalf("OpenConsul(%s, %s): %v", agent.Addr, p, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func guardCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), consulGuard)
	t.Cleanup(cancel)
	return ctx
}

func mustTxn(t *testing.T, b Backend, ops ...Op) {
	t.Helper()
	if err := b.Txn(guardCtx(t), ops); err != nil {
		t.Fatalf("Txn(%+v): %v", ops, err)
	}
}

func put(key, value string) Op { return Op{Kind: OpPut, Key: key, Value: []byte(value)} }

// state is a key's value, or "<absent>".
func state(t *testing.T, b Backend, key string) string {
	t.Helper()
	kv, err := b.Get(guardCtx(t), key)
	switch {
	case errors.Is(err, ErrNotFound):
		return "<absent>"
	case err != nil:
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(kv.Value)
}

func testConsulOpen(t *testing.T, agent *testenv.Consul) {
	dead := testenv.HostPort(testenv.FreePort(t))
	tests := []struct {
		name, addr, prefix, want string
	}{
		{"empty address", "", "hydra", `address "": want HOST:PORT`},
		{"URL not address", "http://127.0.0.1:8500", "hydra", "want HOST:PORT"},
		{"no host", ":8500", "hydra", "want HOST:PORT"},
		{"bad port", "127.0.0.1:0", "hydra", `bad port "0"`},
		{"empty prefix", agent.Addr, "/", "must not be empty"},
		{"absolute prefix", agent.Addr, "/hydra", "must not start with '/'"},
		{"nothing listening", dead, "hydra", "ping " + dead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenConsul(guardCtx(t), tc.addr, tc.prefix, "")
			if err == nil {
				_ = b.Close()
				t.Fatalf("OpenConsul(%q, %q) succeeded", tc.addr, tc.prefix)
			}
			if !strings.HasPrefix(err.Error(), "store: consul: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenConsul(%q, %q) = %q, want a message with %q", tc.addr, tc.prefix, err, tc.want)
			}
		})
	}
	t.Run("prefix normalized", func(t *testing.T) {
		b := openConsul(t, agent, "hydra-norm-test//")
		if b.prefix != "hydra-norm-test/" {
			t.Errorf("prefix = %q, want %q", b.prefix, "hydra-norm-test/")
		}
	})
}

func testConsulGetList(t *testing.T, agent *testenv.Consul) {
	b, other := openConsul(t, agent), openConsul(t, agent)
	ctx := guardCtx(t)
	_, err := b.Get(ctx, "a/missing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"a/missing"`) {
		t.Errorf("Get(missing) = %v, want ErrNotFound naming the key", err)
	}
	mustTxn(t, b, put("a/2", "two"), put("a/1", "one"), put("a/10", "ten"), put("b", "bee"))
	mustTxn(t, other, put("a/1", "other's"))

	kv, err := b.Get(ctx, "a/1")
	if err != nil || string(kv.Value) != "one" || kv.Key != "a/1" || kv.Version == 0 {
		t.Errorf("Get(a/1) = %+v, %v; want value one, key a/1 and a version", kv, err)
	}
	list, err := b.List(ctx, "a/")
	if err != nil {
		t.Fatalf("List(a/): %v", err)
	}
	var got []string
	for _, kv := range list {
		got = append(got, kv.Key+"="+string(kv.Value))
		if kv.Version == 0 {
			t.Errorf("List: %s has no version", kv.Key)
		}
	}
	if want := "a/1=one a/10=ten a/2=two"; strings.Join(got, " ") != want {
		t.Errorf("List(a/) = %v, want %s", got, want)
	}
	if list, err := b.List(ctx, "nothing/"); err != nil || len(list) != 0 {
		t.Errorf("List(nothing/) = %v, %v; want empty", list, err)
	}
}

// testConsulTxn checks every Op×Cond on a key that exists ("old") or not.
// Each transaction also writes a side key first, so a conflict also shows
// that nothing was applied.
func testConsulTxn(t *testing.T, agent *testenv.Consul) {
	const (
		current = iota // the key's version
		stale          // the version before it
		one            // version 1, for a missing key
	)
	tests := []struct {
		name     string
		exists   bool
		op       Op // Key and Version filled in below
		version  int
		conflict bool
		want     string
	}{
		{"put/none/existing", true, Op{Kind: OpPut, Value: []byte("new")}, 0, false, "new"},
		{"put/none/missing", false, Op{Kind: OpPut, Value: []byte("new")}, 0, false, "new"},
		{"put/version/current", true, Op{Kind: OpPut, Cond: CondVersion, Value: []byte("new")}, current, false, "new"},
		{"put/version/stale", true, Op{Kind: OpPut, Cond: CondVersion, Value: []byte("new")}, stale, true, "old"},
		{"put/version/missing", false, Op{Kind: OpPut, Cond: CondVersion, Value: []byte("new")}, one, true, "<absent>"},
		{"put/absent/missing", false, Op{Kind: OpPut, Cond: CondAbsent, Value: []byte("new")}, 0, false, "new"},
		{"put/absent/existing", true, Op{Kind: OpPut, Cond: CondAbsent, Value: []byte("new")}, 0, true, "old"},
		{"delete/none/existing", true, Op{Kind: OpDelete}, 0, false, "<absent>"},
		{"delete/none/missing", false, Op{Kind: OpDelete}, 0, false, "<absent>"},
		{"delete/version/current", true, Op{Kind: OpDelete, Cond: CondVersion}, current, false, "<absent>"},
		{"delete/version/stale", true, Op{Kind: OpDelete, Cond: CondVersion}, stale, true, "old"},
		{"delete/version/missing", false, Op{Kind: OpDelete, Cond: CondVersion}, one, true, "<absent>"},
		{"delete/absent/missing", false, Op{Kind: OpDelete, Cond: CondAbsent}, 0, false, "<absent>"},
		{"delete/absent/existing", true, Op{Kind: OpDelete, Cond: CondAbsent}, 0, true, "old"},
		{"check/none/existing", true, Op{Kind: OpCheck}, 0, false, "old"},
		{"check/none/missing", false, Op{Kind: OpCheck}, 0, false, "<absent>"},
		{"check/version/current", true, Op{Kind: OpCheck, Cond: CondVersion}, current, false, "old"},
		{"check/version/stale", true, Op{Kind: OpCheck, Cond: CondVersion}, stale, true, "old"},
		{"check/version/missing", false, Op{Kind: OpCheck, Cond: CondVersion}, one, true, "<absent>"},
		{"check/absent/missing", false, Op{Kind: OpCheck, Cond: CondAbsent}, 0, false, "<absent>"},
		{"check/absent/existing", true, Op{Kind: OpCheck, Cond: CondAbsent}, 0, true, "old"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := openConsul(t, agent)
			var before KV
			if tc.exists {
				mustTxn(t, b, put("k", "old"))
				before, _ = b.Get(guardCtx(t), "k")
			}
			op := tc.op
			op.Key = "k"
			if op.Cond == CondVersion {
				op.Version = map[int]uint64{current: before.Version, stale: before.Version - 1, one: 1}[tc.version]
			}
			err := b.Txn(guardCtx(t), []Op{put("side", "x"), op})
			checkConflict(t, err, tc.conflict, "k")
			if got := state(t, b, "k"); got != tc.want {
				t.Errorf("after Txn, k = %q, want %q", got, tc.want)
			}
			wantSide := map[bool]string{false: "x", true: "<absent>"}[tc.conflict]
			if got := state(t, b, "side"); got != wantSide {
				t.Errorf("after Txn, side = %q, want %q (all or nothing)", got, wantSide)
			}
			if after, err := b.Get(guardCtx(t), "k"); err == nil && tc.want == "new" && after.Version <= before.Version {
				t.Errorf("version after put = %d, want more than %d", after.Version, before.Version)
			}
		})
	}
}

// checkConflict wants err to be nil, or a *ConflictError on key.
func checkConflict(t *testing.T, err error, conflict bool, key string) {
	t.Helper()
	var ce *ConflictError
	switch {
	case !conflict && err != nil:
		t.Errorf("Txn: %v, want success", err)
	case conflict && !errors.As(err, &ce):
		t.Errorf("Txn: %v, want a *ConflictError on %q", err, key)
	case conflict && (ce.Key != key || !errors.Is(err, ErrConflict)):
		t.Errorf("Txn: conflict on %q (Is ErrConflict: %v), want on %q", ce.Key, errors.Is(err, ErrConflict), key)
	}
}

// testConsulTxnConflictKey checks that the conflict names the caller's key
// even when ops before it expand to two Consul ops or to none.
func testConsulTxnConflictKey(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	mustTxn(t, b, put("a", "a"), put("c", "c"), put("d", "d"))
	ver := func(key string) uint64 {
		kv, err := b.Get(guardCtx(t), key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		return kv.Version
	}
	va, vc := ver("a"), ver("c")
	tests := []struct {
		name string
		ops  []Op
		key  string
	}{
		{"after a two-op delete", []Op{
			{Kind: OpDelete, Key: "a", Cond: CondVersion, Version: va},
			{Kind: OpCheck, Key: "b"},
			put("b", "b"),
			{Kind: OpCheck, Key: "c", Cond: CondVersion, Version: vc + 1000},
		}, "c"},
		{"the two-op delete itself", []Op{
			put("b", "b"),
			{Kind: OpDelete, Key: "a", Cond: CondVersion, Version: va + 1000},
		}, "a"},
		{"first of two failures", []Op{
			{Kind: OpCheck, Key: "d", Cond: CondAbsent},
			{Kind: OpPut, Key: "c", Cond: CondVersion, Version: vc + 1000},
		}, "d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkConflict(t, b.Txn(guardCtx(t), tc.ops), true, tc.key)
			if ver("a") != va || ver("c") != vc || state(t, b, "b") != "<absent>" {
				t.Errorf("a failed Txn changed something")
			}
		})
	}
}

func testConsulDeleteTree(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	mustTxn(t, b, put("tree/a", "1"), put("tree/b/c", "2"), put("treetop", "3"), put("other", "4"))
	mustTxn(t, b, Op{Kind: OpDeleteTree, Key: "tree/", Cond: CondVersion}) // Cond is ignored
	list, err := b.List(guardCtx(t), "")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, kv := range list {
		keys = append(keys, kv.Key)
	}
	if got := strings.Join(keys, " "); got != "other treetop" {
		t.Errorf("after DeleteTree(tree/), keys = %q, want %q", got, "other treetop")
	}
	// A failed condition rolls the tree deletion back.
	err = b.Txn(guardCtx(t), []Op{{Kind: OpCheck, Key: "other", Cond: CondAbsent}, {Kind: OpDeleteTree, Key: ""}})
	checkConflict(t, err, true, "other")
	if state(t, b, "other") != "4" {
		t.Errorf("a failed Txn deleted the tree")
	}
}

// testConsulTxnRefused checks what the backend refuses before sending:
// plain errors, never conflicts, and nothing written.
func testConsulTxnRefused(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	lim := b.Limits()
	many := make([]Op, lim.MaxTxnOps+1)
	for i := range many {
		many[i] = put(fmt.Sprintf("many/%d", i), "x")
	}
	half := bytes.Repeat([]byte("h"), lim.MaxTxnBytes/2+1)
	tests := []struct {
		name string
		ops  []Op
		want string
	}{
		{"too many ops", many, fmt.Sprintf("txn of %d ops exceeds the limit of %d", len(many), lim.MaxTxnOps)},
		{"value too large", []Op{{Kind: OpPut, Key: "big", Value: make([]byte, lim.MaxValueSize+1)}},
			fmt.Sprintf(`key "big": value of %d bytes exceeds the limit of %d`, lim.MaxValueSize+1, lim.MaxValueSize)},
		{"txn too large", []Op{{Kind: OpPut, Key: "h1", Value: half}, {Kind: OpPut, Key: "h2", Value: half}},
			"value bytes, over the limit"},
		{"version 0", []Op{{Kind: OpPut, Key: "v0", Cond: CondVersion}}, `key "v0": condition on version 0`},
		{"empty key", []Op{put("", "x")}, "empty key"},
		{"unknown kind", []Op{{Kind: OpKind(9), Key: "k"}}, "unknown op kind 9"},
		{"unknown cond", []Op{{Kind: OpPut, Key: "k", Cond: Cond(9)}}, "unknown condition 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Txn(guardCtx(t), tc.ops)
			if err == nil || errors.Is(err, ErrConflict) {
				t.Fatalf("Txn = %v, want a plain error", err)
			}
			if !strings.HasPrefix(err.Error(), "store: consul: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Txn = %q, want a message with %q", err, tc.want)
			}
			if list, _ := b.List(guardCtx(t), ""); len(list) != 0 {
				t.Errorf("a refused Txn wrote %d keys", len(list))
			}
		})
	}
}

// testConsulServerRefuses sends what Consul itself refuses, past the
// backend's checks, and wants plain errors that say what failed.
func testConsulServerRefuses(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	tests := []struct {
		name string
		ops  []Op
		want string
	}{
		{"body over txn_max_req_len", []Op{{Kind: OpPut, Key: "huge", Value: make([]byte, 600*1024)}}, "too large"},
		{"too many operations", make([]Op, consulMaxOps+1), "too many operations"},
	}
	for i := range tests[1].ops {
		tests[1].ops[i] = put(fmt.Sprintf("op/%d", i), "x")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			txn, owner := b.consulOps(tc.ops)
			err := b.commit(guardCtx(t), tc.ops, txn, owner)
			if err == nil || errors.Is(err, ErrConflict) {
				t.Fatalf("commit = %v, want a plain error", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "store: consul: ") || !strings.Contains(msg, tc.ops[0].Key) || !strings.Contains(msg, tc.want) {
				t.Errorf("commit = %q, want a message naming %q and with %q", msg, tc.ops[0].Key, tc.want)
			}
		})
	}
}

// testConsulLimits fills transactions up to Limits with long keys, to show
// that the limits fit what a default agent accepts.
func testConsulLimits(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	lim := b.Limits()
	long := strings.Repeat("k", 200)
	t.Run("largest value", func(t *testing.T) {
		mustTxn(t, b, Op{Kind: OpPut, Key: long + "/big", Value: make([]byte, lim.MaxValueSize), Cond: CondAbsent})
	})
	t.Run("most ops and bytes", func(t *testing.T) {
		ops := make([]Op, lim.MaxTxnOps)
		for i := range ops {
			ops[i] = Op{Kind: OpPut, Key: fmt.Sprintf("%s/%d", long, i), Cond: CondAbsent,
				Value: make([]byte, lim.MaxTxnBytes/lim.MaxTxnOps)}
		}
		mustTxn(t, b, ops...)
	})
	t.Run("most two-op deletes", func(t *testing.T) {
		list, err := b.List(guardCtx(t), long+"/")
		if err != nil || len(list) < lim.MaxTxnOps {
			t.Fatalf("List = %d keys, %v; want at least %d", len(list), err, lim.MaxTxnOps)
		}
		ops := make([]Op, lim.MaxTxnOps)
		for i := range ops {
			ops[i] = Op{Kind: OpDelete, Key: list[i].Key, Cond: CondVersion, Version: list[i].Version}
		}
		mustTxn(t, b, ops...)
	})
}

func testConsulWait(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	ctx := guardCtx(t)
	idx, err := b.Wait(ctx, "w/", 0)
	if err != nil || idx == 0 {
		t.Fatalf("Wait(after 0) = %d, %v; want the current index", idx, err)
	}

	t.Run("wakes on a write", func(t *testing.T) {
		// Nothing else writes to this agent meanwhile, so a changed index
		// can only come from the write below.
		done := make(chan error, 1)
		go func() {
			next := idx
			for next == idx && ctx.Err() == nil { // Consul may return early, unchanged
				next, _ = b.Wait(ctx, "w/", idx)
			}
			kv, err := b.Get(ctx, "w/k")
			switch {
			case err != nil:
				done <- fmt.Errorf("Wait returned %d (after %d) before the write: %w", next, idx, err)
			case next < kv.Version:
				done <- fmt.Errorf("Wait = %d, want at least the write's version %d", next, kv.Version)
			default:
				done <- nil
			}
		}()
		mustTxn(t, b, put("w/k", "v"))
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	t.Run("ctx cancelled", func(t *testing.T) {
		cur, _ := b.Wait(ctx, "w/", 0)
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := b.Wait(cctx, "w/", cur)
			done <- err
		}()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel = %v, want context.Canceled", err)
		}
	})

	t.Run("index went backwards", func(t *testing.T) {
		short := openConsul(t, agent, b.prefix)
		short.waitTime = time.Second // Consul answers with its lower index after this
		got, err := short.Wait(ctx, "w/", 1<<50)
		if err != nil || got != 0 {
			t.Errorf("Wait(after an index Consul never reached) = %d, %v; want 0 (reset)", got, err)
		}
	})
}

// sessionHolding returns the session that holds the lock named name.
func sessionHolding(t *testing.T, agent *testenv.Consul, b *ConsulBackend, name string) string {
	t.Helper()
	pair, _, err := agent.Client(t).KV().Get(b.prefix+consulLeaderDir+name, nil)
	if err != nil || pair == nil {
		t.Fatalf("lock key of %q: %v, %v", name, pair, err)
	}
	return pair.Session
}

func testConsulCampaign(t *testing.T, agent *testenv.Consul) {
	b1 := openConsul(t, agent)
	b2 := openConsul(t, agent, b1.prefix) // a second replica
	ctx := guardCtx(t)
	l1, err := b1.Campaign(ctx, "mgr")
	if err != nil {
		t.Fatalf("Campaign 1: %v", err)
	}
	if got, want := sessionHolding(t, agent, b1, "mgr"), l1.(*consulLeadership).session; got != want {
		t.Fatalf("lock held by session %q, want %q", got, want)
	}

	var resigned atomic.Bool
	second := make(chan Leadership, 1)
	go func() {
		l2, err := b2.Campaign(ctx, "mgr")
		if err != nil {
			t.Errorf("Campaign 2: %v", err)
		} else if !resigned.Load() {
			t.Errorf("Campaign 2 won while campaigner 1 held the lock")
		}
		second <- l2
	}()

	// Once the second campaigner has its session it is trying for the lock;
	// the lock must still be the first one's.
	for sessions(t, agent, "mgr") < 2 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := sessionHolding(t, agent, b1, "mgr"), l1.(*consulLeadership).session; got != want {
		t.Fatalf("with two campaigners, lock held by session %q, want %q", got, want)
	}
	resigned.Store(true)
	if err := l1.Resign(ctx); err != nil {
		t.Fatalf("Resign 1: %v", err)
	}
	requireClosed(t, l1.Lost(), "Lost after Resign")
	l2 := <-second
	if l2 == nil {
		t.FailNow()
	}
	if err := l2.Resign(ctx); err != nil || l1.Resign(ctx) != nil {
		t.Errorf("Resign 2: %v (and Resign 1 again must be nil)", err)
	}
	requireNoLeadershipGoroutines(t)
}

func testConsulCampaignCancel(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	ctx := guardCtx(t)
	held, err := b.Campaign(ctx, "busy")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	defer func() { _ = held.Resign(ctx) }()

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := b.Campaign(cctx, "busy")
		done <- err
	}()
	// Cancel once the waiting campaigner has its session, so that the
	// cancellation lands while it waits for the lock.
	for sessions(t, agent, "busy") < 2 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Campaign after cancel = %v, want context.Canceled", err)
	}
	if n := sessions(t, agent, "busy"); n != 1 {
		t.Errorf("%d sessions left after a cancelled Campaign, want 1 (the holder's)", n)
	}
}

// sessions counts the agent's sessions made by Campaign(name).
func sessions(t *testing.T, agent *testenv.Consul, name string) int {
	t.Helper()
	list, _, err := agent.Client(t).Session().List(nil)
	if err != nil {
		t.Fatalf("list sessions: %v", err)
	}
	n := 0
	for _, s := range list {
		if s.Name == "hydra leader "+name {
			n++
		}
	}
	return n
}

func testConsulSessionDestroyed(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	ctx := guardCtx(t)
	l, err := b.Campaign(ctx, "doomed")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	if _, err := agent.Client(t).Session().Destroy(l.(*consulLeadership).session, nil); err != nil {
		t.Fatalf("destroy session: %v", err)
	}
	requireClosed(t, l.Lost(), "Lost after the session was destroyed")
	if err := l.Resign(ctx); err != nil {
		t.Errorf("Resign of a lost leadership: %v", err)
	}
	requireNoLeadershipGoroutines(t)
}

func testConsulCloseResigns(t *testing.T, agent *testenv.Consul) {
	b := openConsul(t, agent)
	ctx := guardCtx(t)
	l, err := b.Campaign(ctx, "closing")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	requireClosed(t, l.Lost(), "Lost after Close")
	if sessions(t, agent, "closing") != 0 {
		t.Errorf("Close left the session behind")
	}
	requireNoLeadershipGoroutines(t)
}

// TestConsulAgentLoss stops its own agent under a held leadership.
func TestConsulAgentLoss(t *testing.T) {
	agent := testenv.StartConsul(t)
	b := openConsul(t, agent)
	ctx := guardCtx(t)
	mustTxn(t, b, put("k", "v"))
	l, err := b.Campaign(ctx, "mgr")
	if err != nil {
		t.Fatalf("Campaign: %v", err)
	}

	agent.Stop()
	requireClosed(t, l.Lost(), "Lost after the agent stopped")
	if err := b.Ping(ctx); err == nil || !strings.Contains(err.Error(), agent.Addr) {
		t.Errorf("Ping with the agent stopped = %v, want an error naming %s", err, agent.Addr)
	}
	_ = l.Resign(ctx) // fails (no agent) but must return and stop everything
	requireNoLeadershipGoroutines(t)

	// A dev agent restarts empty, on the same address.
	agent.Restart(t)
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if got := state(t, b, "k"); got != "<absent>" {
		t.Errorf("after a dev agent's restart, k = %q, want it gone", got)
	}
}

func requireClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(consulGuard):
		t.Fatalf("%s: still open after %v", what, consulGuard)
	}
}

// requireNoLeadershipGoroutines fails if a lock monitor or a session
// renewal still runs after Resign. It looks a few times, because a goroutine
// that just closed the channel Resign waited on may not have returned yet.
func requireNoLeadershipGoroutines(t *testing.T) {
	t.Helper()
	var stacks, fn string
	for range 100 {
		if stacks, fn = leadershipGoroutine(); fn == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("a goroutine in %s still runs after Resign:\n%s", fn, stacks)
}

func leadershipGoroutine() (stacks, fn string) {
	buf := make([]byte, 1<<20)
	stacks = string(buf[:runtime.Stack(buf, true)])
	for _, fn := range []string{"api.(*Lock).monitorLock", "api.(*Session).RenewPeriodic", "(*consulLeadership)"} {
		if strings.Contains(stacks, fn) {
			return stacks, fn
		}
	}
	return stacks, ""
}

func TestIsConsulCondFailure(t *testing.T) {
	const key = "hydra/k"
	tests := []struct {
		verb api.KVOp
		what string
		want bool
	}{
		{api.KVCAS, `failed to set key "hydra/k", index is stale`, true},
		{api.KVCAS, `failed to set key "hydra/other", index is stale`, false},
		{api.KVCheckIndex, `failed to check index, key "hydra/k" doesn't exist`, true},
		{api.KVCheckIndex, `failed index check for key "hydra/k", current modify index 7 != 6`, true},
		{api.KVCheckNotExists, `key "hydra/k" exists`, true},
		{api.KVCAS, `Permission denied: token lacks permission 'key:write' on "hydra/k"`, false},
		{api.KVCheckIndex, "failed kvs lookup: boom", false},
		{api.KVSet, `key "hydra/k" exists`, false},
		{api.KVDelete, "anything", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.verb)+"/"+tc.what, func(t *testing.T) {
			if got := isConsulCondFailure(&api.KVTxnOp{Verb: tc.verb, Key: key}, tc.what); got != tc.want {
				t.Errorf("isConsulCondFailure(%s, %q) = %v, want %v", tc.verb, tc.what, got, tc.want)
			}
		})
	}
}
