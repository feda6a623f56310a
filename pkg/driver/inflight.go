package driver

import (
	"fmt"
	"sync"
)

// inFlight is the set of volume IDs some RPC is working on. The CSI spec
// lets a plugin answer a concurrent call for the same volume with Aborted
// ("there is already an operation pending for the specified volume"); the
// CO retries. It is the driver's only lock: the cache below locks its own
// views and releases.
type inFlight struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// acquire marks id busy, or fails with errInFlight when it already is.
func (f *inFlight) acquire(id string) (done func(), err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil {
		f.ids = map[string]struct{}{}
	}
	if _, busy := f.ids[id]; busy {
		return nil, fmt.Errorf("driver: volume %s: %w", id, errInFlight)
	}
	f.ids[id] = struct{}{}
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.ids, id)
	}, nil
}
