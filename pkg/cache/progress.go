package cache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// progress of one download, updated by its workers and read by reports.
type progress struct {
	done  atomic.Int64
	total atomic.Int64
	// fromPeers and fromOrigin split the bytes of parts fetched whole.
	fromPeers, fromOrigin atomic.Int64

	mu      sync.Mutex
	state   release.State
	err     string
	updated time.Time
}

func (p *progress) set(s release.State, err string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.err, p.updated = s, err, time.Now().UTC()
}

func (p *progress) snapshot(channel, version string) release.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return release.Progress{
		Channel: channel, Version: version, State: p.state, Error: p.err,
		BytesDone: p.done.Load(), BytesTotal: p.total.Load(), UpdatedAt: p.updated,
		BytesFromPeers: p.fromPeers.Load(), BytesFromOrigin: p.fromOrigin.Load(),
	}
}
