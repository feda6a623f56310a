package manager

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hydra-csi/hydra/pkg/store"
)

// failingBackend answers every call with err.
type failingBackend struct {
	store.Backend
	err error
}

func (b failingBackend) Get(context.Context, string) (store.KV, error)    { return store.KV{}, b.err }
func (b failingBackend) List(context.Context, string) ([]store.KV, error) { return nil, b.err }
func (b failingBackend) Txn(context.Context, []store.Op) error            { return b.err }

// TestStoreErrorsCounted: engine failures count, by operation; answers
// that are not failures (a missing key, a lost compare-and-swap, the
// caller's context ending) do not.
func TestStoreErrorsCounted(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want float64
	}{
		{"engine failure", context.Background(), errors.New("consul: 500 rpc error"), 1},
		{"missing key", context.Background(), store.ErrNotFound, 0},
		{"lost CAS", context.Background(), &store.ConflictError{Key: "channels/c"}, 0},
		{"caller gone", cancelled, context.Canceled, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "e"}, []string{"op"})
			b := &countingBackend{Backend: failingBackend{err: tc.err}, errors: errs}
			_, _ = b.Get(tc.ctx, "k")
			_, _ = b.List(tc.ctx, "p/")
			_ = b.Txn(tc.ctx, nil)
			for _, op := range []string{"get", "list", "txn"} {
				if got := testutil.ToFloat64(errs.WithLabelValues(op)); got != tc.want {
					t.Errorf("errors{op=%q} = %v, want %v", op, got, tc.want)
				}
			}
		})
	}
}
