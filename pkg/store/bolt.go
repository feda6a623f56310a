package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var (
	boltData = []byte("kv")
	boltMeta = []byte("meta")
	boltRev  = []byte("rev")
)

// BoltBackend keeps Hydra's state in one bbolt file: the embedded default
// for a single manager replica. bbolt locks the file, so a second process
// opening it fails instead of corrupting it.
//
// Each value is stored as an 8-byte big-endian version followed by the
// bytes. Versions come from one revision counter, bumped once per Txn, so
// they behave like Consul's ModifyIndex: unique per write, growing.
type BoltBackend struct {
	db *bolt.DB

	// mu guards indexes and changed. indexes holds, per first key segment
	// ("channels", "nodes", ...), the revision of its last write; Wait uses
	// it. changed is closed and replaced after every commit.
	mu      sync.Mutex
	indexes map[string]uint64
	rev     uint64
	changed chan struct{}

	// leader is a one-slot semaphore: only one Campaign in this process
	// holds the leadership at a time (the file lock covers other processes).
	leader chan struct{}
}

// OpenBolt opens (or creates) the bbolt file at path.
func OpenBolt(path string) (*BoltBackend, error) {
	if path == "" {
		return nil, errors.New("store: bolt: empty file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: bolt: create directory for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: bolt: %s is locked by another process (is another hydra-manager running on it?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("store: bolt: open %s: %w", path, err)
	}
	b := &BoltBackend{db: db, indexes: map[string]uint64{}, changed: make(chan struct{}), leader: make(chan struct{}, 1)}
	if err := db.Update(b.init); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: bolt: initialise %s: %w", path, err)
	}
	return b, nil
}

// init creates the buckets and loads the revision counter. The per-segment
// indexes start at the current revision: a watcher that reconnects after a
// restart sees "changed" once, which is harmless, and never misses a write.
func (b *BoltBackend) init(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(boltData); err != nil {
		return err
	}
	meta, err := tx.CreateBucketIfNotExists(boltMeta)
	if err != nil {
		return err
	}
	if v := meta.Get(boltRev); len(v) == 8 {
		b.rev = binary.BigEndian.Uint64(v)
	}
	return nil
}

// Get implements Backend.
func (b *BoltBackend) Get(_ context.Context, key string) (KV, error) {
	var kv KV
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(boltData).Get([]byte(key))
		if raw == nil {
			return fmt.Errorf("store: key %q: %w", key, ErrNotFound)
		}
		kv = decodeBolt([]byte(key), raw)
		return nil
	})
	return kv, err
}

// List implements Backend.
func (b *BoltBackend) List(_ context.Context, prefix string) ([]KV, error) {
	var out []KV
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltData).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, decodeBolt(k, v))
		}
		return nil
	})
	return out, err
}

// decodeBolt copies key and value out of bbolt's memory map, which is only
// valid inside the transaction.
func decodeBolt(k, raw []byte) KV {
	return KV{Key: string(k), Version: binary.BigEndian.Uint64(raw[:8]), Value: bytes.Clone(raw[8:])}
}

// Txn implements Backend: every condition is checked and every write made
// inside one bbolt read-write transaction, so a failed check rolls all back.
func (b *BoltBackend) Txn(_ context.Context, ops []Op) error {
	if len(ops) > b.Limits().MaxTxnOps {
		return fmt.Errorf("store: bolt: transaction of %d ops exceeds the limit of %d", len(ops), b.Limits().MaxTxnOps)
	}
	var rev uint64
	touched := map[string]bool{}
	err := b.db.Update(func(tx *bolt.Tx) error {
		data, meta := tx.Bucket(boltData), tx.Bucket(boltMeta)
		rev = b.currentRev(meta) + 1
		for _, op := range ops {
			if err := applyBolt(data, op, rev); err != nil {
				return err
			}
			if op.Kind != OpCheck {
				touched[segment(op.Key)] = true
			}
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], rev)
		return meta.Put(boltRev, buf[:])
	})
	if err != nil {
		return err
	}
	b.publish(rev, touched)
	return nil
}

func (b *BoltBackend) currentRev(meta *bolt.Bucket) uint64 {
	if v := meta.Get(boltRev); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func applyBolt(data *bolt.Bucket, op Op, rev uint64) error {
	key := []byte(op.Key)
	if op.Kind == OpDeleteTree {
		return deleteTreeBolt(data, key)
	}
	if err := checkBolt(data, op); err != nil {
		return err
	}
	switch op.Kind {
	case OpPut:
		val := make([]byte, 8+len(op.Value))
		binary.BigEndian.PutUint64(val, rev)
		copy(val[8:], op.Value)
		return data.Put(key, val)
	case OpDelete:
		return data.Delete(key)
	}
	return nil
}

func checkBolt(data *bolt.Bucket, op Op) error {
	raw := data.Get([]byte(op.Key))
	switch op.Cond {
	case CondAbsent:
		if raw != nil {
			return &ConflictError{Key: op.Key}
		}
	case CondVersion:
		if raw == nil || binary.BigEndian.Uint64(raw[:8]) != op.Version {
			return &ConflictError{Key: op.Key}
		}
	}
	return nil
}

func deleteTreeBolt(data *bolt.Bucket, prefix []byte) error {
	c := data.Cursor()
	// Deleting through the cursor moves it to the next key, so re-seek.
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// segment is the first component of a key; indexes are kept per segment.
func segment(key string) string {
	s, _, _ := strings.Cut(key, "/")
	return s
}

// publish records a commit's revision and wakes every Wait.
func (b *BoltBackend) publish(rev uint64, touched map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rev = rev
	for s := range touched {
		b.indexes[s] = rev
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// index of a prefix: one more than the revision of the last write to its
// segment, so that an empty store has index 1 and 0 keeps meaning "now". A
// segment not written since open follows the global revision instead: that
// may wake a watcher early (allowed), never late.
func (b *BoltBackend) index(prefix string) (uint64, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx, ok := b.indexes[segment(prefix)]
	if !ok || prefix == "" {
		idx = b.rev
	}
	return idx + 1, b.changed
}

// Wait implements Backend.
func (b *BoltBackend) Wait(ctx context.Context, prefix string, after uint64) (uint64, error) {
	for {
		idx, changed := b.index(prefix)
		if after == 0 || idx > after {
			return idx, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Campaign implements Backend. A bbolt store serves one process (the file is
// locked), so leadership is only contended inside this process.
func (b *BoltBackend) Campaign(ctx context.Context, _ string) (Leadership, error) {
	select {
	case b.leader <- struct{}{}:
		return &boltLeadership{b: b, lost: make(chan struct{})}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type boltLeadership struct {
	b    *BoltBackend
	once sync.Once
	lost chan struct{}
}

func (l *boltLeadership) Lost() <-chan struct{} { return l.lost }

func (l *boltLeadership) Resign(context.Context) error {
	l.once.Do(func() {
		close(l.lost)
		<-l.b.leader
	})
	return nil
}

// Limits implements Backend. bbolt has no hard value limit; these bounds keep
// a single transaction's memory reasonable.
func (b *BoltBackend) Limits() Limits {
	return Limits{MaxValueSize: 16 << 20, MaxTxnOps: 10000, MaxTxnBytes: 256 << 20}
}

// Ping implements Backend.
func (b *BoltBackend) Ping(context.Context) error {
	return b.db.View(func(*bolt.Tx) error { return nil })
}

// Close implements Backend.
func (b *BoltBackend) Close() error { return b.db.Close() }
