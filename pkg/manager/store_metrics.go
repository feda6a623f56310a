package manager

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/store"
)

// Store operations counted by hydra_manager_store_errors_total{op}.
var storeOps = []string{"get", "list", "txn", "wait", "campaign", "ping"}

// countingBackend counts the failures of the store engine under the
// manager (bbolt, Consul), so that a store going bad shows as a rate
// rather than only as log lines and 500s. It wraps the Backend rather than
// the Store so that every read and write of the layout is seen once, where
// the engine answers.
type countingBackend struct {
	store.Backend
	errors *prometheus.CounterVec
}

// instrumentStore returns a Store over s's engine that counts its errors.
// The Store type holds nothing but its Backend, so both values may be used
// side by side; the caller still closes s.
func instrumentStore(s *store.Store, errs *prometheus.CounterVec) *store.Store {
	return store.New(&countingBackend{Backend: s.Backend(), errors: errs})
}

// count records err unless it is an answer rather than a failure: a
// missing key, a compare-and-swap that lost (the caller retries), or the
// caller's own context ending (a client that went away, shutdown).
func (b *countingBackend) count(ctx context.Context, op string, err error) error {
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
		b.errors.WithLabelValues(op).Inc()
	}
	return err
}

func (b *countingBackend) Get(ctx context.Context, key string) (store.KV, error) {
	kv, err := b.Backend.Get(ctx, key)
	return kv, b.count(ctx, "get", err)
}

func (b *countingBackend) List(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, err := b.Backend.List(ctx, prefix)
	return kvs, b.count(ctx, "list", err)
}

func (b *countingBackend) Txn(ctx context.Context, ops []store.Op) error {
	return b.count(ctx, "txn", b.Backend.Txn(ctx, ops))
}

func (b *countingBackend) Wait(ctx context.Context, prefix string, after uint64) (uint64, error) {
	index, err := b.Backend.Wait(ctx, prefix, after)
	return index, b.count(ctx, "wait", err)
}

func (b *countingBackend) Campaign(ctx context.Context, name string) (store.Leadership, error) {
	l, err := b.Backend.Campaign(ctx, name)
	return l, b.count(ctx, "campaign", err)
}

func (b *countingBackend) Ping(ctx context.Context) error {
	return b.count(ctx, "ping", b.Backend.Ping(ctx))
}
