package httpapi

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/api"
)

// Large publishes take turns. A publish holds its body, the decoded
// manifests and their gzip'd copy in memory at once, several times the
// body's size (docs/manager.md gives the measured ceiling), so two large
// publishes at once can take what twenty would and no limit on the body
// alone bounds the manager's memory. Small bodies, which are most
// publishes, never wait.
const (
	// LargePublishBody is the body size above which a publish takes a
	// turn; a body of unknown length (chunked) counts as large.
	LargePublishBody = 1 << 20
	// DefaultMaxConcurrentPublishes is how many large publishes run at
	// once by default.
	DefaultMaxConcurrentPublishes = 2
)

// publishLimiter admits at most cap(slots) large publishes at once; the
// others wait for a turn until their request ends.
type publishLimiter struct {
	slots   chan struct{}
	running prometheus.Gauge
	waiting prometheus.Gauge
}

func newPublishLimiter(n int, reg prometheus.Registerer) (*publishLimiter, error) {
	l := &publishLimiter{
		slots: make(chan struct{}, n),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_large_publishes_running",
			Help: "Publishes with a body over 1 MiB being read and stored now (at most --max-concurrent-publishes).",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_large_publishes_waiting",
			Help: "Publishes with a body over 1 MiB waiting for a turn.",
		}),
	}
	for _, c := range []prometheus.Collector{l.running, l.waiting} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// acquire waits for a turn when r's body is large and returns the
// function that gives it back (a no-op for a small body). A request that
// ends while waiting gets 503, which the client may retry. Over HTTP/1.1
// the server sees a client leave only once it reads the body, so a
// waiter whose client gave up keeps its place until its turn and then
// fails at once on the closed body.
func (l *publishLimiter) acquire(r *http.Request) (func(), error) {
	if r.ContentLength >= 0 && r.ContentLength <= LargePublishBody {
		return func() {}, nil
	}
	l.waiting.Inc()
	defer l.waiting.Dec()
	select {
	case l.slots <- struct{}{}:
	case <-r.Context().Done():
		return nil, newHTTPError(http.StatusServiceUnavailable, api.CodeUnavailable, "",
			"publish of %s: gave up waiting for a turn behind %d large publishes: %v", bodySize(r), cap(l.slots), r.Context().Err())
	}
	l.running.Inc()
	return func() {
		l.running.Dec()
		<-l.slots
	}, nil
}

// bodySize names a request's body size for messages.
func bodySize(r *http.Request) string {
	if r.ContentLength < 0 {
		return "a body of unknown length"
	}
	return fmt.Sprintf("%d bytes", r.ContentLength)
}
