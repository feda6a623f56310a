package store_test

import (
	"path/filepath"
	"testing"

	"github.com/hydra-csi/hydra/pkg/store"
	"github.com/hydra-csi/hydra/pkg/store/storetest"
)

func TestBoltConformance(t *testing.T) {
	open := func(t *testing.T, path string) *store.Store {
		b, err := store.OpenBolt(path)
		if err != nil {
			t.Fatalf("OpenBolt: %v", err)
		}
		s := store.New(b)
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	paths := map[*store.Store]string{}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) *store.Store {
			p := filepath.Join(t.TempDir(), "state.db")
			s := open(t, p)
			paths[s] = p
			return s
		},
		Reopen: func(t *testing.T, s *store.Store) *store.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, paths[s])
		},
	})
}

func TestBoltLockedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	b, err := store.OpenBolt(p)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// bbolt's flock is per open file description, so a second open in the
	// same process is refused as another process's would be.
	if _, err := store.OpenBolt(p); err == nil {
		t.Fatal("second OpenBolt of a locked file succeeded")
	}
}
