package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/store"
	"github.com/hydra-csi/hydra/pkg/store/storetest"
)

// TestConsulConformance runs the shared suite against a real Consul agent;
// every store the suite opens gets its own key prefix on that agent.
func TestConsulConformance(t *testing.T) {
	agent := testenv.StartConsul(t)
	var n atomic.Int64
	open := func(t *testing.T, prefix string) *store.Store {
		b, err := store.OpenConsul(context.Background(), agent.Addr, prefix, "")
		if err != nil {
			t.Fatalf("OpenConsul: %v", err)
		}
		s := store.New(b)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	prefixes := map[*store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) *store.Store {
			p := fmt.Sprintf("conformance-%d", n.Add(1))
			s := open(t, p)
			prefixes[s] = p
			return s
		},
		Reopen: func(t *testing.T, s *store.Store) *store.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, prefixes[s])
		},
	})
}
