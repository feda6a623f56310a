package store

import (
	"context"
	"sync"
	"time"
)

// Node reports are group-committed: concurrent PutNodeStatus calls share
// one backend transaction. A fleet reports every few seconds per node
// while anything moves; with one transaction per report the store's write
// rate is the ceiling — bbolt has a single fsync'd writer, Consul one Raft
// apply per /v1/txn — and publishes queue behind hundreds of reports. A
// report is a blind overwrite of its node's own key, so it can ride in any
// transaction.
const (
	// maxReportBatch bounds one batch below the backend's MaxTxnOps, to
	// keep each transaction short.
	maxReportBatch = 256
	// reportWriteTimeout bounds one batch's transaction. The batch is not
	// any single caller's, so no caller's cancellation ends it.
	reportWriteTimeout = 30 * time.Second
)

// reportBatcher is the queue of reports waiting for a transaction. Its
// zero value is ready to use.
type reportBatcher struct {
	mu       sync.Mutex
	pending  map[string]*pendingReport // by key
	order    []string                  // pending keys, oldest first
	flushing bool                      // a flush goroutine is running
	txns     int                       // transactions written, for tests
}

// pendingReport is one key's newest value (or its deletion) and the
// callers waiting for it.
type pendingReport struct {
	key    string
	value  []byte
	delete bool
	done   chan struct{} // closed once err is set
	err    error
}

// put queues value at key (its deletion when value is nil) and waits until a transaction carrying it (or a
// newer value of the same key) commits, or ctx ends. A caller whose ctx
// ends first gets ctx.Err(); its report may still be written.
//
//  1. A value for a key already queued replaces the queued one: both
//     callers wait for the one write.
//  2. The first caller that finds no flush running starts one; it drains
//     the queue batch by batch and stops when the queue is empty.
func (r *reportBatcher) put(ctx context.Context, b Backend, key string, value []byte) error {
	r.mu.Lock()
	if r.pending == nil {
		r.pending = map[string]*pendingReport{}
	}
	p := r.pending[key]
	if p == nil { // (1)
		p = &pendingReport{key: key, done: make(chan struct{})}
		r.pending[key] = p
		r.order = append(r.order, key)
	}
	p.value, p.delete = value, value == nil
	if !r.flushing { // (2)
		r.flushing = true
		// The flush outlives this caller: it writes others' reports too.
		go r.flush(context.WithoutCancel(ctx), b)
	}
	r.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush writes batches until the queue is empty. ctx carries values
// only; each batch has its own deadline.
func (r *reportBatcher) flush(ctx context.Context, b Backend) {
	for {
		batch := r.take(b.Limits())
		if len(batch) == 0 {
			return
		}
		ops := make([]Op, len(batch))
		for i, p := range batch {
			ops[i] = Op{Kind: OpPut, Key: p.key, Value: p.value}
			if p.delete {
				ops[i] = Op{Kind: OpDelete, Key: p.key}
			}
		}
		txnCtx, cancel := context.WithTimeout(ctx, reportWriteTimeout)
		err := b.Txn(txnCtx, ops)
		cancel()
		for _, p := range batch {
			p.err = err
			close(p.done)
		}
	}
}

// take removes the oldest queued reports that fit one transaction, or
// ends the flush when none are queued. A single report always fits:
// PutNodeStatus refuses values over the backend's value limit, which is
// within its transaction limit.
func (r *reportBatcher) take(lim Limits) []*pendingReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, size := 0, 0
	for n < len(r.order) && n < min(maxReportBatch, lim.MaxTxnOps) {
		v := len(r.pending[r.order[n]].value)
		if n > 0 && size+v > lim.MaxTxnBytes {
			break
		}
		size += v
		n++
	}
	if n == 0 {
		r.flushing = false
		return nil
	}
	batch := make([]*pendingReport, n)
	for i, key := range r.order[:n] {
		batch[i] = r.pending[key]
		delete(r.pending, key)
	}
	r.order = r.order[n:]
	r.txns++
	return batch
}
