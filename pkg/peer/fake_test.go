package peer_test

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/peer"
)

// fakeStore is the narrow seam of these tests: files in memory, the
// requests it was asked for, and optional behaviours.
type fakeStore struct {
	files map[string][]byte // "channel/version/dataset/path"
	// err, when set, is what every OpenRange returns.
	err error
	// open, when set, answers instead of files.
	open func(ctx context.Context, r peer.RangeRequest, wait time.Duration) (io.ReadCloser, error)

	mu     sync.Mutex
	calls  []storeCall
	closed int
}

type storeCall struct {
	r    peer.RangeRequest
	wait time.Duration
}

func fileKey(r peer.RangeRequest) string {
	return strings.Join([]string{r.Channel, r.Version, r.Dataset, r.Path}, "/")
}

func (f *fakeStore) OpenRange(ctx context.Context, r peer.RangeRequest, wait time.Duration) (io.ReadCloser, error) {
	f.mu.Lock()
	f.calls = append(f.calls, storeCall{r, wait})
	f.mu.Unlock()
	switch {
	case f.open != nil:
		return f.open(ctx, r, wait)
	case f.err != nil:
		return nil, f.err
	}
	b, ok := f.files[fileKey(r)]
	switch {
	case !ok:
		return nil, peer.ErrNotHeld
	case r.Off+r.N > int64(len(b)):
		return nil, peer.ErrOutOfRange
	}
	return &closeCounter{Reader: bytes.NewReader(b[r.Off : r.Off+r.N]), f: f}, nil
}

func (f *fakeStore) Calls() []storeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]storeCall(nil), f.calls...)
}

func (f *fakeStore) Closed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

type closeCounter struct {
	io.Reader
	f *fakeStore
}

func (c *closeCounter) Close() error {
	c.f.mu.Lock()
	c.f.closed++
	c.f.mu.Unlock()
	return nil
}

// testServer serves st with opts (defaults for what opts leaves out) on a
// loopback httptest server.
type testServer struct {
	*peer.Server
	http *httptest.Server
	reg  *prometheus.Registry
	addr string
}

func newTestServer(t *testing.T, st peer.Store, opts peer.ServerOptions) *testServer {
	t.Helper()
	opts.Store = st
	if opts.Secret == nil {
		opts.Secret = func() []byte { return testSecret }
	}
	if opts.Rate == 0 {
		opts.Rate = 1 << 30
	}
	if opts.Streams == 0 {
		opts.Streams = 8
	}
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	s, err := peer.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &testServer{Server: s, http: hs, reg: reg, addr: hs.Listener.Addr().String()}
}

// metric is the value of the series of name with the label values given
// ("code", "404"); -1 when there is none.
func (ts *testServer) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			match := true
			for i := 0; i+1 < len(labels); i += 2 {
				match = match && have[labels[i]] == labels[i+1]
			}
			if match {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// content is n bytes that differ from offset to offset.
func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}
