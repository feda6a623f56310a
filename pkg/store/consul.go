package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// Consul's limits (1.22, checked against a real agent): /v1/txn takes at
// most 128 operations, and kv_max_value_size and txn_max_req_len both
// default to 512 KiB. Every write of this backend goes through /v1/txn,
// whose limit applies to the JSON request body, where values travel
// base64-encoded (4 bytes for every 3): a 511 KiB value makes a 682 KiB body
// and is refused. So the raw bytes one Txn can carry — and thus the largest
// value — are 3/4 of the body, less room for the verbs, keys and JSON of up
// to 128 operations (about 140 bytes each plus the key).
const (
	consulMaxReqLen   = 512 * 1024
	consulMaxOps      = 128
	consulTxnOverhead = 64 * 1024
	consulMaxTxnBytes = (consulMaxReqLen - consulTxnOverhead) / 4 * 3 // 336 KiB
)

const (
	// consulWaitTime bounds one blocking query of Wait; Consul adds up to
	// 1/16 of jitter. A cancelled ctx interrupts it at once.
	consulWaitTime = 5 * time.Minute
	// consulOpenTimeout bounds the ping at open when ctx has no deadline.
	consulOpenTimeout = 10 * time.Second
	// consulMaxConns caps the connections the backend opens to its agent.
	// Consul refuses a client's connections beyond http_max_conns_per_client
	// (200 by default) with a 429; without a cap a burst of requests (a
	// fleet's reports) dials one connection each and gets refused. Beyond
	// the cap, requests wait for a connection. The backend's own blocking
	// queries hold a few connections each for up to consulWaitTime.
	consulMaxConns = 64
	// consulLeaderDir holds Campaign's lock keys, under the backend prefix.
	consulLeaderDir = "leader/"
)

// ConsulBackend is the Backend on Consul's KV store, for managers that run as
// several replicas. A key's Version is its ModifyIndex; Txn is one /v1/txn
// call; Wait is a blocking query; Campaign holds a session lock.
//
// Keys under "leader/" are reserved for Campaign's lock keys.
type ConsulBackend struct {
	client    *api.Client
	transport *http.Transport
	addr      string
	prefix    string // ends with '/'
	waitTime  time.Duration

	mu      sync.Mutex
	leaders map[*consulLeadership]struct{}
}

var _ Backend = (*ConsulBackend)(nil)

// OpenConsul connects to the Consul agent at addr ("HOST:PORT", plain HTTP
// unless CONSUL_HTTP_SSL and its companions say otherwise) and keeps every key
// under prefix. An empty token falls back to CONSUL_HTTP_TOKEN. It pings the
// agent once so that a wrong address fails here.
func OpenConsul(ctx context.Context, addr, prefix, token string) (*ConsulBackend, error) {
	if err := validateConsulAddr(addr); err != nil {
		return nil, err
	}
	prefix, err := normalizeConsulPrefix(prefix)
	if err != nil {
		return nil, err
	}
	cfg := api.DefaultConfig() // reads CONSUL_HTTP_TOKEN and the TLS variables
	cfg.Address = addr
	cfg.Transport.MaxConnsPerHost = consulMaxConns
	cfg.Transport.MaxIdleConnsPerHost = consulMaxConns // keep them: redialing is the manager's largest cost under load
	if token != "" {
		cfg.Token = token
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("store: consul: client for %s: %w", addr, err)
	}
	b := &ConsulBackend{
		client:    client,
		transport: cfg.Transport,
		addr:      addr,
		prefix:    prefix,
		waitTime:  consulWaitTime,
		leaders:   make(map[*consulLeadership]struct{}),
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, consulOpenTimeout)
		defer cancel()
	}
	if err := b.Ping(ctx); err != nil {
		b.transport.CloseIdleConnections()
		return nil, err
	}
	return b, nil
}

func validateConsulAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("store: consul: address %q: want HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("store: consul: address %q: bad port %q", addr, port)
	}
	return nil
}

// normalizeConsulPrefix refuses an empty prefix, which would let DeleteTree
// wipe the whole KV store, and gives the prefix its trailing '/'.
func normalizeConsulPrefix(prefix string) (string, error) {
	p := strings.TrimRight(prefix, "/")
	switch {
	case p == "":
		return "", fmt.Errorf("store: consul: prefix %q: must not be empty", prefix)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("store: consul: prefix %q: must not start with '/'", prefix)
	}
	return p + "/", nil
}

// Get reads key with a consistent read, so that a CAS loop never starts
// from a follower's stale copy.
func (b *ConsulBackend) Get(ctx context.Context, key string) (KV, error) {
	if key == "" {
		return KV{}, errors.New("store: consul: get: empty key")
	}
	pair, _, err := b.client.KV().Get(b.prefix+key, b.readOptions(ctx))
	if err != nil {
		return KV{}, fmt.Errorf("store: consul: get %q from %s: %w", key, b.addr, err)
	}
	if pair == nil {
		return KV{}, fmt.Errorf("store: consul: get %q: %w", key, ErrNotFound)
	}
	return b.kv(pair), nil
}

// List reads every key under prefix with a consistent read.
func (b *ConsulBackend) List(ctx context.Context, prefix string) ([]KV, error) {
	pairs, _, err := b.client.KV().List(b.prefix+prefix, b.readOptions(ctx))
	if err != nil {
		return nil, fmt.Errorf("store: consul: list %q from %s: %w", prefix, b.addr, err)
	}
	out := make([]KV, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, b.kv(p))
	}
	slices.SortFunc(out, func(x, y KV) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

func (b *ConsulBackend) readOptions(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
}

func (b *ConsulBackend) kv(p *api.KVPair) KV {
	return KV{Key: strings.TrimPrefix(p.Key, b.prefix), Value: p.Value, Version: p.ModifyIndex}
}

// Wait is a blocking query on prefix. Consul's index for a prefix is the
// highest ModifyIndex under it (deletions leave tombstones that count), or
// the whole KV table's index when the prefix is empty; so writes elsewhere
// may wake it early, which the contract allows.
//
// The index can go backwards, when tombstones are reaped or a snapshot is
// restored. Following Consul's advice, Wait then returns 0: the caller's
// next Wait returns the current index at once, and the caller reloads.
func (b *ConsulBackend) Wait(ctx context.Context, prefix string, after uint64) (uint64, error) {
	q := &api.QueryOptions{WaitIndex: after, WaitTime: b.waitTime}
	_, meta, err := b.client.KV().Keys(b.prefix+prefix, "", q.WithContext(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("store: consul: wait on %q after index %d at %s: %w", prefix, after, b.addr, err)
	}
	if meta.LastIndex < after {
		return 0, nil
	}
	// Consul's advice again: never block on index 0, which does not block.
	return max(meta.LastIndex, 1), nil
}

// Limits reports what Consul's default limits let one Txn carry (see
// consulMaxReqLen). MaxTxnOps is half of Consul's 128 operations because a
// delete on a version takes two (see consulOps).
func (b *ConsulBackend) Limits() Limits {
	return Limits{
		MaxValueSize: consulMaxTxnBytes,
		MaxTxnOps:    consulMaxOps / 2,
		MaxTxnBytes:  consulMaxTxnBytes,
	}
}

// Ping asks the agent for the cluster's leader: without one, no write or
// consistent read can succeed.
func (b *ConsulBackend) Ping(ctx context.Context) error {
	leader, err := b.client.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("store: consul: ping %s: %w", b.addr, err)
	}
	if leader == "" {
		return fmt.Errorf("store: consul: ping %s: no Consul leader", b.addr)
	}
	return nil
}

// Close resigns every leadership still held, so that another replica takes
// over at once instead of after the session TTL.
func (b *ConsulBackend) Close() error {
	ctx, cancel := cleanupContext()
	defer cancel()
	var errs []error
	for _, l := range b.heldLeaderships() {
		errs = append(errs, l.Resign(ctx))
	}
	b.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// Txn sends ops as one Consul transaction, which Consul applies all or none.
func (b *ConsulBackend) Txn(ctx context.Context, ops []Op) error {
	if err := b.checkTxn(ops); err != nil {
		return err
	}
	txn, owner := b.consulOps(ops)
	if len(txn) == 0 {
		return nil // only unconditional checks: nothing to do
	}
	return b.commit(ctx, ops, txn, owner)
}

// checkTxn refuses, before anything is sent, what Consul would refuse or
// what the contract does not define.
func (b *ConsulBackend) checkTxn(ops []Op) error {
	lim := b.Limits()
	if len(ops) > lim.MaxTxnOps {
		return fmt.Errorf("store: consul: txn of %d ops exceeds the limit of %d", len(ops), lim.MaxTxnOps)
	}
	total := 0
	for i, op := range ops {
		if err := checkOp(op, lim); err != nil {
			return fmt.Errorf("store: consul: txn op %d on key %q: %w", i, op.Key, err)
		}
		total += len(op.Value)
	}
	if total > lim.MaxTxnBytes {
		return fmt.Errorf("store: consul: txn of %d ops carries %d value bytes, over the limit of %d",
			len(ops), total, lim.MaxTxnBytes)
	}
	return nil
}

func checkOp(op Op, lim Limits) error {
	switch {
	case op.Kind < OpPut || op.Kind > OpDeleteTree:
		return fmt.Errorf("unknown op kind %d", op.Kind)
	case op.Kind == OpDeleteTree:
		return nil // an empty prefix is the whole keyspace; Cond is ignored
	case op.Key == "":
		return errors.New("empty key")
	case op.Cond < CondNone || op.Cond > CondAbsent:
		return fmt.Errorf("unknown condition %d", op.Cond)
	case op.Cond == CondVersion && op.Version == 0:
		return errors.New("condition on version 0: versions start at 1")
	case len(op.Value) > lim.MaxValueSize:
		return fmt.Errorf("value of %d bytes exceeds the limit of %d", len(op.Value), lim.MaxValueSize)
	}
	return nil
}

// consulOps maps ops to Consul's verbs; owner[i] is the index in ops of
// Consul's op i. Two mappings are not the obvious ones:
//   - a create-only put is a CAS with index 0, which Consul defines as
//     "set if the key does not exist" — one op instead of two;
//   - a delete on a version is check-index then delete, because Consul's
//     delete-cas succeeds when the key is missing, and the contract wants
//     the key to exist.
func (b *ConsulBackend) consulOps(ops []Op) (api.TxnOps, []int) {
	txn := make(api.TxnOps, 0, len(ops))
	owner := make([]int, 0, len(ops))
	add := func(i int, verb api.KVOp, index uint64, value []byte) {
		kv := &api.KVTxnOp{Verb: verb, Key: b.prefix + ops[i].Key, Index: index, Value: value}
		txn = append(txn, &api.TxnOp{KV: kv})
		owner = append(owner, i)
	}
	for i, op := range ops {
		switch {
		case op.Kind == OpDeleteTree:
			add(i, api.KVDeleteTree, 0, nil)
		case op.Kind == OpPut && op.Cond == CondNone:
			add(i, api.KVSet, 0, op.Value)
		case op.Kind == OpPut && op.Cond == CondVersion:
			add(i, api.KVCAS, op.Version, op.Value)
		case op.Kind == OpPut && op.Cond == CondAbsent:
			add(i, api.KVCAS, 0, op.Value)
		case op.Kind == OpDelete && op.Cond == CondNone:
			add(i, api.KVDelete, 0, nil)
		case op.Cond == CondVersion: // OpDelete or OpCheck
			add(i, api.KVCheckIndex, op.Version, nil)
			if op.Kind == OpDelete {
				add(i, api.KVDelete, 0, nil)
			}
		case op.Cond == CondAbsent: // OpDelete or OpCheck: nothing to delete
			add(i, api.KVCheckNotExists, 0, nil)
		}
	}
	return txn, owner
}

// commit sends txn. Consul answers a rolled-back transaction with the index
// and message of every op that failed; a failed condition becomes a
// *ConflictError on the caller's key, anything else (a denied ACL, an
// internal error) a plain error. Requests Consul refuses outright (too
// large, too many ops) come back as err.
func (b *ConsulBackend) commit(ctx context.Context, ops []Op, txn api.TxnOps, owner []int) error {
	// RequireConsistent matters only when every op is a check: Consul then
	// serves the transaction as a read, which could otherwise be stale.
	q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	ok, resp, _, err := b.client.Txn().Txn(txn, q)
	if err != nil {
		return fmt.Errorf("store: consul: txn of %d ops (first key %q) at %s: %w", len(ops), ops[0].Key, b.addr, err)
	}
	if ok {
		return nil
	}
	var conflict error
	for _, e := range resp.Errors {
		if e.OpIndex < 0 || e.OpIndex >= len(txn) {
			return fmt.Errorf("store: consul: txn of %d ops (first key %q) rolled back: %s", len(ops), ops[0].Key, e.What)
		}
		key := ops[owner[e.OpIndex]].Key
		if !isConsulCondFailure(txn[e.OpIndex].KV, e.What) {
			return fmt.Errorf("store: consul: txn op on key %q failed: %s", key, e.What)
		}
		if conflict == nil {
			conflict = &ConflictError{Key: key}
		}
	}
	if conflict == nil {
		return fmt.Errorf("store: consul: txn of %d ops (first key %q) rolled back without a reason", len(ops), ops[0].Key)
	}
	return conflict
}

// isConsulCondFailure tells a failed condition from other errors of the
// same op (a denied ACL, a failed lookup) by Consul's exact messages, from
// agent/consul/state/txn.go and kvs.go. TestConsulBackend/Txn would catch a
// Consul release that rewords them: its conflicts would turn plain errors.
func isConsulCondFailure(op *api.KVTxnOp, what string) bool {
	switch op.Verb {
	case api.KVCAS:
		return what == fmt.Sprintf("failed to set key %q, index is stale", op.Key)
	case api.KVCheckIndex:
		return what == fmt.Sprintf("failed to check index, key %q doesn't exist", op.Key) ||
			strings.HasPrefix(what, fmt.Sprintf("failed index check for key %q, current modify index ", op.Key))
	case api.KVCheckNotExists:
		return what == fmt.Sprintf("key %q exists", op.Key)
	}
	return false
}
