package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Errors of the cache; test with errors.Is.
var (
	// ErrNoSpace: the filesystem cannot hold the release (ResourceExhausted).
	ErrNoSpace = errors.New("not enough space for the release")
	// ErrVerify: downloaded bytes do not match the manifest (Internal).
	ErrVerify = errors.New("verification failed")
)

// Part sizes: big enough that per-request overhead is small (on either
// side: MinIO spent 0.8 CPU-s/GB serving 16 MiB ranges against 1.0 for
// 8 MiB ones in the download benchmark), small enough that many requests
// run across and within files and that a restart re-fetches little.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 1 << 20
	MaxPartSize     = 64 << 20
)

// Options configure a Cache.
type Options struct {
	// Root is the cache root (--cache-root).
	Root string
	// Reader fetches byte ranges from sources.
	Reader source.Reader
	// Requests is the global budget of concurrent range requests (default 16).
	Requests int
	// PartSize is the range size (default 16 MiB).
	PartSize int64
	// Registerer receives the cache's metrics; nil for none.
	Registerer prometheus.Registerer
	// CommitInterval bounds how long finished parts wait before they are
	// synced and journaled (default 1s).
	CommitInterval time.Duration
	// Peers, when set, are asked for parts before the origin (peers.go).
	Peers Peers
}

// Cache is a node's release store. Safe for concurrent use.
type Cache struct {
	layout   Layout
	reader   source.Reader
	partSize int64
	requests chan struct{}
	commit   time.Duration
	metrics  *metrics
	peers    Peers
	// peerState remembers failing and lying peers and the bytes each
	// release took from peers and the origin.
	peerState peerState

	// mu guards flights and holds (refcounts of releases in use by views
	// being built; see Hold).
	mu      sync.Mutex
	flights map[string]*flight
	holds   map[string]int
	// ids memoizes the identities of stored releases (StoredAs).
	ids map[string]release.Identity
	// proofs are the access checks running and proven the ones passed,
	// by "<credentials ID> <channel>/<version>" (access.go).
	proofs map[string]*proof
	proven map[string]bool
	// useGen counts holds taken and let go, so that eviction notices a use
	// that began after it read what the node needs (evict.go).
	useGen uint64

	// budget, when set, makes downloads evict (budget.go); evictMu runs
	// one eviction at a time. memoryRoot is the RAM tier's root, for the
	// used-fraction gauge.
	budget     atomic.Pointer[Budget]
	evictMu    sync.Mutex
	memoryRoot atomic.Pointer[string]
}

// New opens the cache at opts.Root, creating its directories.
func New(opts Options) (*Cache, error) {
	if opts.Root == "" || opts.Reader == nil {
		return nil, errors.New("cache: Root and Reader are required")
	}
	if opts.Requests <= 0 {
		opts.Requests = 16
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	if opts.PartSize < MinPartSize || opts.PartSize > MaxPartSize {
		return nil, fmt.Errorf("cache: part size %d outside [%d, %d]", opts.PartSize, MinPartSize, MaxPartSize)
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	l := Layout{Root: opts.Root}
	// Trash left by a removal that a crash interrupted goes first.
	_ = os.RemoveAll(l.Root + "/tmp/.trash")
	for _, d := range []string{"store", "tmp", "meta", "views"} {
		if err := os.MkdirAll(l.Root+"/"+d, 0o755); err != nil {
			return nil, fmt.Errorf("cache: create %s: %w", d, err)
		}
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	c := &Cache{
		layout: l, reader: opts.Reader, partSize: opts.PartSize,
		requests: make(chan struct{}, opts.Requests), commit: opts.CommitInterval,
		metrics: met, flights: map[string]*flight{}, holds: map[string]int{}, ids: map[string]release.Identity{},
		proofs: map[string]*proof{}, proven: map[string]bool{}, peers: opts.Peers,
		peerState: peerState{cool: map[string]time.Time{}, liars: map[string]map[string]bool{}, sourced: map[string][2]int64{}},
	}
	if opts.Registerer != nil {
		used := usedCollector{roots: c.tierRoots, desc: prometheus.NewDesc("hydra_cache_filesystem_used_ratio",
			"Fraction of each tier's filesystem in use (used over used plus available, as df counts), by tier (disk, memory).",
			[]string{"tier"}, nil)}
		if err := opts.Registerer.Register(used); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// tierRoots are the roots of the disk tier and, once there is one, the
// RAM tier.
func (c *Cache) tierRoots() map[string]string {
	roots := map[string]string{tierDisk: c.layout.Root}
	if r := c.memoryRoot.Load(); r != nil {
		roots[tierMemory] = *r
	}
	return roots
}

// Layout returns the cache's paths.
func (c *Cache) Layout() Layout { return c.layout }

// Stored reports whether a release is complete in store/.
func (c *Cache) Stored(channel, version string) bool {
	fi, err := os.Stat(c.layout.StoreDir(channel, version))
	return err == nil && fi.IsDir()
}

// flight is one download of one release, shared by every caller.
type flight struct {
	channel, version string
	// creds is the ID of the credentials it downloads with.
	creds    string
	id       release.Identity
	done     chan struct{}
	err      error
	progress progress
	c        *Cache
	// serve is what peers may read of the download (nil before it is
	// planned, and for downloads with a volume's credentials); guarded by
	// the cache's mu.
	serve *serving
}

func flightKey(channel, version string) string { return channel + "/" + version }

// setServing publishes what peers may read of the flight.
func (f *flight) setServing(s *serving) {
	f.c.mu.Lock()
	f.serve = s
	f.c.mu.Unlock()
}

// Ensure makes a release (the publish rel names: StoredAs) present in store/ with the node's own
// credentials: EnsureFor with nil.
func (c *Cache) Ensure(ctx context.Context, rel release.Release) error {
	return c.EnsureFor(ctx, rel, nil)
}

// flightJoins bounds how many failed downloads of other credentials a
// caller waits out before it gives up with the last one's error.
const flightJoins = 3

// EnsureFor makes a release present in store/, downloading it with creds
// (nil: the node's chain) when needed, and then proves that creds can read
// it (Authorize): whoever downloaded it, a caller gets no release its own
// credentials cannot read.
//
// Concurrent calls for one release share one download, which runs on its
// own: when ctx ends, EnsureFor returns ctx.Err() but the download goes on,
// and a later call finds it finished or joins it (docs/design.md §7: a download
// outlives the RPC that started it). A download started by another
// caller runs with that caller's credentials; when it fails, the failure
// says nothing about ours, so the next one starts with ours.
func (c *Cache) EnsureFor(ctx context.Context, rel release.Release, creds *source.Credentials) error {
	if err := rel.Validate(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	reader, err := c.readerFor(creds)
	if err != nil {
		return err
	}
	// A flight that succeeds may have installed another publish of the
	// name (one joined while the manager still named that one): the loop
	// checks again, and the next flight replaces it.
	for joins := 1; !c.StoredAs(rel.Channel, rel.Version, rel.Identity()); joins++ {
		if joins > flightJoins {
			return fmt.Errorf("cache: release %s/%s (%s): the downloads this call joined installed another publish of the name",
				rel.Channel, rel.Version, rel.Identity())
		}
		f := c.join(rel, creds.ID(), reader)
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err != nil && (f.creds == creds.ID() || joins >= flightJoins) {
			return f.err
		}
	}
	return c.Authorize(ctx, rel, creds)
}

// join returns the running flight for rel or starts one with reader.
func (c *Cache) join(rel release.Release, creds string, reader source.Reader) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := flightKey(rel.Channel, rel.Version)
	if f, ok := c.flights[key]; ok {
		return f
	}
	f := &flight{channel: rel.Channel, version: rel.Version, creds: creds, id: rel.Identity(), done: make(chan struct{}), c: c}
	f.progress.set(release.StatePending, "")
	c.flights[key] = f
	go c.fly(f, rel, reader)
	return f
}

func (c *Cache) fly(f *flight, rel release.Release, reader source.Reader) {
	start := time.Now()
	log := klog.Background().WithValues("channel", rel.Channel, "release", rel.Version, "credentials", f.creds)
	log.V(2).Info("download starting")
	err := c.download(context.Background(), rel, &f.progress, reader, f.creds != source.NodeCredentials, f)
	c.metrics.observe(err, time.Since(start))
	c.peerState.mu.Lock()
	sum := c.peerState.sourced[flightKey(rel.Channel, rel.Version)]
	c.peerState.sourced[flightKey(rel.Channel, rel.Version)] = [2]int64{sum[0] + f.progress.fromPeers.Load(), sum[1] + f.progress.fromOrigin.Load()}
	c.peerState.mu.Unlock()
	if err != nil {
		log.Error(err, "download failed")
		f.progress.set(release.StateFailed, err.Error())
	} else {
		log.V(2).Info("release installed", "seconds", time.Since(start).Seconds())
		f.progress.set(release.StateReady, "")
	}
	c.mu.Lock()
	f.err = err
	// A failed flight is forgotten so the next Ensure retries; a finished
	// one too, since Stored answers for it from now on.
	delete(c.flights, flightKey(rel.Channel, rel.Version))
	c.mu.Unlock()
	close(f.done)
}

// Progress reports every download in flight.
func (c *Cache) Progress() []release.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]release.Progress, 0, len(c.flights))
	for _, f := range c.flights {
		out = append(out, f.progress.snapshot(f.channel, f.version))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Channel+"/"+out[i].Version < out[j].Channel+"/"+out[j].Version
	})
	return out
}
