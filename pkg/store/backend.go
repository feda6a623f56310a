package store

import (
	"context"
	"errors"
	"fmt"
)

// Backend is the small key-value contract that each storage engine
// implements (bbolt, Consul). Everything Hydra keeps — channels, releases,
// manifests, node reports — is laid out over it once, in this package, so
// that both engines behave the same and one conformance suite covers both.
//
// Keys are '/'-separated strings; values are opaque bytes. Every write gives
// the key a new Version (Consul's ModifyIndex, a revision counter in bbolt),
// which transactions use for compare-and-swap.
type Backend interface {
	// Get returns the key's value and version, or ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key under prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]KV, error)
	// Txn applies ops atomically: all of them or none. When a condition
	// fails it returns a *ConflictError naming the op's key.
	Txn(ctx context.Context, ops []Op) error
	// Wait blocks until the index of prefix exceeds after, then returns the
	// new index. With after == 0 it returns the current index at once. It
	// may return early with an unchanged index (callers loop); it returns
	// ctx.Err() when ctx ends first.
	Wait(ctx context.Context, prefix string, after uint64) (uint64, error)
	// Campaign blocks until this process holds the leadership named name,
	// or ctx ends. The returned Leadership reports its loss.
	Campaign(ctx context.Context, name string) (Leadership, error)
	// Limits tells the layout code how to size values and transactions.
	Limits() Limits
	// Ping checks that the engine answers (used by /readyz).
	Ping(ctx context.Context) error
	// Close releases the engine's resources.
	Close() error
}

// KV is a key, its value and the version of its last write.
type KV struct {
	Key     string
	Value   []byte
	Version uint64
}

// OpKind says what an Op does.
type OpKind int

// Transaction operations.
const (
	// OpPut writes Value at Key.
	OpPut OpKind = iota
	// OpDelete removes Key (absent keys are fine unless Cond says otherwise).
	OpDelete
	// OpCheck only tests Cond; it writes nothing.
	OpCheck
	// OpDeleteTree removes every key under the prefix Key.
	OpDeleteTree
)

// Cond is the condition an Op places on its key's current state.
type Cond int

// Conditions. OpDeleteTree ignores them.
const (
	// CondNone applies the op whatever the key's state.
	CondNone Cond = iota
	// CondVersion requires the key to exist with exactly Version.
	CondVersion
	// CondAbsent requires the key not to exist.
	CondAbsent
)

// Op is one step of a transaction.
type Op struct {
	Kind    OpKind
	Key     string
	Value   []byte
	Cond    Cond
	Version uint64
}

// Limits describes an engine's size limits.
type Limits struct {
	// MaxValueSize is the largest value one key may hold.
	MaxValueSize int
	// MaxTxnOps is the most ops one Txn may carry.
	MaxTxnOps int
	// MaxTxnBytes is the most value bytes one Txn may carry.
	MaxTxnBytes int
}

// Leadership is held from a successful Campaign until it is lost or resigned.
type Leadership interface {
	// Lost is closed when the leadership ends for any reason.
	Lost() <-chan struct{}
	// Resign gives the leadership up so another replica can take it.
	Resign(ctx context.Context) error
}

// Errors the store returns; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("conflict")
)

// ConflictError reports the key whose condition failed in a Txn.
type ConflictError struct{ Key string }

func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: conflict on key %q", e.Key)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }
