package main

import (
	"context"
	"log"
	"math"
	"slices"
	"sync"
	"time"
)

// Request kinds timed client-side. A long-poll's latency is not an API
// latency (it waits by design); its answers are measured as fan-out.
const (
	kindPublish  = "publish"  // POST /v1/channels/{channel}/releases
	kindReport   = "report"   // PUT /v1/nodes/{node}/status
	kindManifest = "manifest" // GET /v1/channels/{channel}/releases/{version}/manifest
	kindStatus   = "status"   // GET /v1/channels/{channel}/status
	kindLongPoll = "longpoll" // GET /v1/nodes/{node}/desired; errors only
)

var requestKinds = []string{kindPublish, kindReport, kindManifest, kindStatus}

// timed is one request: when it started and how long it took.
type timed struct {
	at time.Time
	d  time.Duration
}

// recorder collects every request's latency and every error of one store's
// run; it is shared by all goroutines of the run.
type recorder struct {
	mu      sync.Mutex
	lat     map[string][]timed
	errs    map[string]int
	logged  map[string]bool // the first error of each kind goes to the log
	writes  int             // successful publishes and reports: the API's store writes
	answers int             // long-poll answers with a new index
	stopped bool
}

func newRecorder() *recorder {
	return &recorder{lat: map[string][]timed{}, errs: map[string]int{}, logged: map[string]bool{}}
}

// time runs fn, recording its latency under kind, or its error. An error
// caused by the run's end (ctx cancelled) is not counted.
func (r *recorder) time(ctx context.Context, kind string, fn func() error) error {
	start := time.Now()
	err := fn()
	d := time.Since(start)
	if err != nil {
		r.fail(ctx, kind, err)
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat[kind] = append(r.lat[kind], timed{start, d})
	if kind == kindPublish || kind == kindReport {
		r.writes++
	}
	return nil
}

func (r *recorder) fail(ctx context.Context, kind string, err error) {
	if ctx.Err() != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.errs[kind]++
	if !r.logged[kind] {
		r.logged[kind] = true
		log.Printf("first %s error: %v", kind, err)
	}
}

// stop stops counting errors: the servers are going down on purpose.
func (r *recorder) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
}

// answered counts a long-poll answer that carried a new index.
func (r *recorder) answered() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers++
}

// storeWrites is how many publishes and reports have succeeded so far.
func (r *recorder) storeWrites() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// longPollAnswers is how many long-polls have answered with a new index.
func (r *recorder) longPollAnswers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answers
}

// between returns the latencies of kind for requests started in [from, to).
func (r *recorder) between(kind string, from, to time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, t := range r.lat[kind] {
		if !t.at.Before(from) && t.at.Before(to) {
			out = append(out, t.d)
		}
	}
	return out
}

// errors returns the error counts by kind.
func (r *recorder) errors() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.errs))
	for k, v := range r.errs {
		out[k] = v
	}
	return out
}

// dist is a latency distribution in milliseconds.
type dist struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50ms"`
	P99 float64 `json:"p99ms"`
	Max float64 `json:"maxms"`
}

// distOf computes a distribution with nearest-rank percentiles.
func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return dist{N: len(s), P50: ms(percentile(s, 0.50)), P99: ms(percentile(s, 0.99)), Max: ms(s[len(s)-1])}
}

// percentile of a sorted, non-empty slice by the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
