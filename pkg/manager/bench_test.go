package manager_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// The benchmarks run the real manager behind its HTTP layer on loopback, on
// both stores, and report latency percentiles as custom metrics:
//
//	go test -run '^$' -bench . -benchtime 1x ./pkg/manager/   (make bench)
//
// Publish: the time one publish takes, end to end through the client.
// Fanout: the time from a publish until every one of 1,000 long-polling
// node clients has seen the new head (one sample per node per round).
const (
	benchPublishes = 200
	benchNodes     = 1000
	benchRounds    = 20
)

// benchStore opens a fresh store of one kind; the tests of what depends
// on the store run on both too.
type benchStore struct {
	name string
	open func(tb testing.TB) *store.Store
}

func benchStores() []benchStore {
	return []benchStore{
		{"bolt", func(tb testing.TB) *store.Store {
			bk, err := store.OpenBolt(filepath.Join(tb.TempDir(), "state.db"))
			if err != nil {
				tb.Fatal(err)
			}
			return store.New(bk)
		}},
		{"consul", func(tb testing.TB) *store.Store {
			c := testenv.StartConsul(tb)
			s, err := store.Open(context.Background(), "consul://"+c.Addr+"/bench")
			if err != nil {
				tb.Fatal(err)
			}
			return s
		}},
	}
}

// benchManager serves a manager on s over loopback HTTP.
func benchManager(b *testing.B, s *store.Store) string {
	return managertest.Start(b, managertest.Options{Store: s}).URL
}

func benchRelease(version string) api.PublishRequest {
	files := make([]release.File, 10)
	for i := range files {
		files[i] = release.File{Path: fmt.Sprintf("shard-%d.idx", i), Size: 1 << 30, ETag: `"0123456789abcdef0123456789abcdef"`}
	}
	return api.PublishRequest{Version: version, Datasets: []release.Dataset{{Name: "index", Source: "s3://bucket/index/" + version + "/", Manifest: release.Manifest{Files: files}}}}
}

func newBenchClient(b *testing.B, url string, conns int) *client.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
	c, err := client.New(url, client.WithHTTPClient(&http.Client{Transport: t}))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkPublish(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			c := newBenchClient(b, benchManager(b, bs.open(b)), 4)
			ctx := context.Background()
			if _, err := c.CreateChannel(ctx, "bench", release.Config{Keep: 10000}); err != nil {
				b.Fatal(err)
			}
			var lat []time.Duration
			b.ResetTimer()
			for n := range b.N {
				for i := range benchPublishes {
					start := time.Now()
					if _, err := c.Publish(ctx, "bench", benchRelease(fmt.Sprintf("v%d-%d", n, i))); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
			}
			reportPercentiles(b, lat)
		})
	}
}

func BenchmarkFanout(b *testing.B) {
	for _, bs := range benchStores() {
		b.Run(bs.name, func(b *testing.B) {
			url := benchManager(b, bs.open(b))
			pub := newBenchClient(b, url, 2)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if _, err := pub.CreateChannel(ctx, "fan", release.Config{Keep: 10000}); err != nil {
				b.Fatal(err)
			}
			f := startPollers(ctx, newBenchClient(b, url, benchNodes))
			var lat []time.Duration
			b.ResetTimer()
			for n := range b.N {
				for i := range benchRounds {
					lat = append(lat, f.round(ctx, b, pub, fmt.Sprintf("v%d-%d", n, i))...)
				}
			}
			b.StopTimer()
			reportPercentiles(b, lat)
		})
	}
}

// fanout is benchNodes goroutines, each long-polling as its own node.
type fanout struct {
	mu     sync.Mutex
	target string
	start  time.Time
	seen   []time.Duration
	all    chan struct{}
}

func startPollers(ctx context.Context, c *client.Client) *fanout {
	f := &fanout{}
	ready := make(chan struct{}, benchNodes)
	for i := range benchNodes {
		go f.poll(ctx, c, fmt.Sprintf("node-%04d", i), ready)
	}
	for range benchNodes {
		<-ready
	}
	return f
}

func (f *fanout) poll(ctx context.Context, c *client.Client, node string, ready chan<- struct{}) {
	var index uint64
	var last string
	first := true
	for ctx.Err() == nil {
		d, err := c.Desired(ctx, node, index, time.Minute)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		index = d.Index
		if first {
			ready <- struct{}{}
			first = false
		}
		if len(d.Channels) == 0 || d.Channels[0].Head == last {
			continue
		}
		last = d.Channels[0].Head
		f.observe(last)
	}
}

func (f *fanout) observe(head string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if head != f.target || f.all == nil {
		return
	}
	f.seen = append(f.seen, time.Since(f.start))
	if len(f.seen) == benchNodes {
		close(f.all)
		f.all = nil
	}
}

// round publishes version and waits until every poller has seen it.
func (f *fanout) round(ctx context.Context, b *testing.B, pub *client.Client, version string) []time.Duration {
	all := make(chan struct{})
	f.mu.Lock()
	f.target, f.start, f.seen, f.all = version, time.Now(), nil, all
	f.mu.Unlock()
	if _, err := pub.Publish(ctx, "fan", benchRelease(version)); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		f.mu.Lock()
		b.Fatalf("round %s: only %d of %d nodes saw the publish", version, len(f.seen), benchNodes)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "samples")
	b.ReportMetric(0, "ns/op") // wall time per op is meaningless here
}
