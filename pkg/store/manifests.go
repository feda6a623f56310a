package store

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/hydra-csi/hydra/pkg/release"
)

// When a head moves, every node that holds the channel fetches the new
// manifest at about the same moment; reading, checking, decompressing and
// decoding it each time was the manager's second largest cost under load.
// A manifest never changes once written and its release record names its
// SHA-256, so decoded manifests are kept by digest, least recently used
// first out, and concurrent reads of one manifest share one read.
const (
	// manifestCacheBytes bounds the cache by the manifests' stored
	// (gzip'd) size; decoded, they take several times more.
	manifestCacheBytes = 4 << 20
	// manifestCacheMax is the largest manifest kept, so that one huge
	// release does not push out the rest.
	manifestCacheMax = 1 << 20
	// manifestReadTimeout bounds a shared read of a manifest.
	manifestReadTimeout = time.Minute
)

// manifestCache holds decoded manifests by digest. Its zero value is ready.
type manifestCache struct {
	group singleflight.Group

	mu    sync.Mutex
	byKey map[string]*list.Element // of *cachedManifest
	lru   list.List                // most recent first
	bytes int
}

type cachedManifest struct {
	digest   string
	datasets []release.Dataset
	size     int // stored bytes
}

// get returns the manifest with digest, from memory or else from read
// (which also returns the manifest's stored size).
func (c *manifestCache) get(digest string, read func() ([]release.Dataset, int, error)) ([]release.Dataset, error) {
	if ds, ok := c.lookup(digest); ok {
		return ds, nil
	}
	v, err, _ := c.group.Do(digest, func() (any, error) {
		ds, size, err := read()
		if err == nil {
			c.add(digest, ds, size)
		}
		return ds, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]release.Dataset), nil
}

func (c *manifestCache) lookup(digest string) ([]release.Dataset, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[digest]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedManifest).datasets, true
}

func (c *manifestCache) add(digest string, ds []release.Dataset, size int) {
	if size > manifestCacheMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string]*list.Element{}
	}
	if _, ok := c.byKey[digest]; ok {
		return
	}
	c.byKey[digest] = c.lru.PushFront(&cachedManifest{digest: digest, datasets: ds, size: size})
	c.bytes += size
	for c.bytes > manifestCacheBytes {
		oldest := c.lru.Back()
		m := oldest.Value.(*cachedManifest)
		c.lru.Remove(oldest)
		delete(c.byKey, m.digest)
		c.bytes -= m.size
	}
}
