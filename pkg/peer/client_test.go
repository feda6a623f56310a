package peer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

var clientRange = peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", Off: 10, N: 90}

// peerAt serves h on loopback and returns its host:port.
func peerAt(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// answer writes a 206 the way the protocol wants, with the given
// Content-Range, Content-Length and body.
func answer(contentRange string, length int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentRange != "" {
			w.Header().Set("Content-Range", contentRange)
		}
		w.Header().Set("Content-Length", fmt.Sprint(length))
		w.WriteHeader(http.StatusPartialContent)
		w.Write(body) //nolint:errcheck // the test reads what arrives
	}
}

// TestClientRequest: the client sends the protocol's request, escaped
// segment by segment, and asks for no compression.
func TestClientRequest(t *testing.T) {
	var got *http.Request
	addr := peerAt(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(context.Background())
		answer("bytes 10-99/*", 90, make([]byte, 90))(w, r)
	})
	r := clientRange
	r.Path = "sp ace/%?#/été"
	r.Identity = release.Identity{Seq: 42, CreatedAt: time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.FixedZone("x", 3600))}
	c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
	if _, err := c.ReadRange(context.Background(), addr, testSecret, r, 90*time.Second, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct{ name, got, want string }{
		{"method", got.Method, http.MethodGet},
		{"path", got.URL.EscapedPath(), "/v1/peer/releases/a/v1/d/sp%20ace/%25%3F%23/%C3%A9t%C3%A9"},
		{"Authorization", got.Header.Get("Authorization"), "Bearer " + peer.Token(testSecret, "node-a")},
		{peer.HeaderNode, got.Header.Get(peer.HeaderNode), "node-a"},
		{"Range", got.Header.Get("Range"), "bytes=10-99"},
		{peer.HeaderIdentity, got.Header.Get(peer.HeaderIdentity), "42@2026-12-01T09:00:00.123456789Z"},
		{peer.HeaderWait + " (clamped)", got.Header.Get(peer.HeaderWait), "30000"},
		{"Accept-Encoding", got.Header.Get("Accept-Encoding"), ""},
	} {
		if h.got != h.want {
			t.Errorf("%s = %q, want %q", h.name, h.got, h.want)
		}
	}
}

// TestClientBadAnswers: anything but the 206 of the range asked for is
// refused, and a redirect is not followed.
func TestClientBadAnswers(t *testing.T) {
	body := make([]byte, 90)
	var redirected atomic.Int32
	elsewhere := peerAt(t, func(w http.ResponseWriter, r *http.Request) {
		redirected.Add(1)
		answer("bytes 10-99/*", 90, body)(w, r)
	})
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		wantErr error // nil: any error that is no write error
	}{
		{"another range", answer("bytes 0-89/*", 90, body), peer.ErrBadAnswer},
		{"no Content-Range", answer("", 90, body), peer.ErrBadAnswer},
		{"Content-Range size not a number", answer("bytes 10-99/x", 90, body), peer.ErrBadAnswer},
		{"Content-Range of two ranges", answer("bytes 10-99,0-5/*", 90, body), peer.ErrBadAnswer},
		{"longer", answer("bytes 10-99/*", 91, append(body, 0)), peer.ErrBadAnswer},
		{"200 with the whole file", func(w http.ResponseWriter, _ *http.Request) { w.Write(make([]byte, 1000)) }, peer.ErrBadAnswer}, //nolint:errcheck // test
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://"+elsewhere+r.URL.Path, http.StatusFound)
		}, peer.ErrBadAnswer},
		{"400", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "Range: no", 400) }, peer.ErrBadAnswer},
		{"418", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(418) }, peer.ErrBadAnswer},
		{"401", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(401) }, peer.ErrUnauthorized},
		{"cut short", answer("bytes 10-99/*", 90, body[:50]), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := peerAt(t, tc.h)
			c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
			_, err := c.ReadRange(context.Background(), addr, testSecret, clientRange, 0, io.Discard)
			switch {
			case err == nil:
				t.Fatal("ReadRange succeeded")
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("ReadRange = %v, want %v", err, tc.wantErr)
			case peer.IsWriteError(err):
				t.Errorf("ReadRange = %v, a write error for the peer's failure", err)
			case !strings.Contains(err.Error(), addr):
				t.Errorf("error %q does not name the peer %s", err, addr)
			}
			if n := redirected.Load(); n != 0 {
				t.Errorf("the redirect was followed %d times", n)
			}
		})
	}
}

// TestClientFloor: a peer that sends too slowly, or holds its answer
// back longer than the wait and a window, is abandoned with ErrSlow; one
// that stays above the floor, or answers within the wait, is not.
func TestClientFloor(t *testing.T) {
	const window = 400 * time.Millisecond
	trickle := func(w http.ResponseWriter, r *http.Request) {
		answerHeader(w, 90)
		for {
			if _, err := w.Write([]byte{1}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	silent := func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	late := func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * window)
		answer("bytes 10-99/*", 90, make([]byte, 90))(w, r)
	}
	// Above the floor: 1 MiB at 1 MiB/s, floor 128 KiB/s.
	capped := newTestServer(t, &fakeStore{files: map[string][]byte{"a/v1/d/f": content(1 << 20)}}, peer.ServerOptions{Rate: 1 << 20})
	for _, tc := range []struct {
		name    string
		addr    string
		r       peer.RangeRequest
		wait    time.Duration
		wantErr error
	}{
		{"trickle", peerAt(t, trickle), clientRange, 0, peer.ErrSlow},
		{"no answer", peerAt(t, silent), clientRange, 0, peer.ErrSlow},
		{"no answer within the wait", peerAt(t, silent), clientRange, window, peer.ErrSlow},
		{"answer within the wait", peerAt(t, late), clientRange, 4 * window, nil},
		{"above the floor", capped.addr, peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: 1 << 20}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := peer.NewClient(peer.ClientOptions{Node: "node-a", MinRate: 128 << 10, FloorWindow: window})
			// A safety net only: the floor must act well before it.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			n, err := c.ReadRange(ctx, tc.addr, testSecret, tc.r, tc.wait, io.Discard)
			switch {
			case tc.wantErr == nil && (err != nil || n != tc.r.N):
				t.Fatalf("ReadRange = %d, %v; want %d bytes", n, err, tc.r.N)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("ReadRange = %d, %v; want %v", n, err, tc.wantErr)
			}
		})
	}
}

func answerHeader(w http.ResponseWriter, n int) {
	w.Header().Set("Content-Range", fmt.Sprintf("bytes 10-%d/*", 10+n-1))
	w.Header().Set("Content-Length", fmt.Sprint(n))
	w.WriteHeader(http.StatusPartialContent)
}

// failingWriter fails once it has taken limit bytes.
type failingWriter struct{ limit, got int }

var errDisk = errors.New("no space left on device")

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.got+len(p) > f.limit {
		return 0, errDisk
	}
	f.got += len(p)
	return len(p), nil
}

// TestClientWriteError: a failing writer is told apart from a failing
// peer.
func TestClientWriteError(t *testing.T) {
	ts := newTestServer(t, &fakeStore{files: map[string][]byte{"a/v1/d/f": content(1 << 20)}}, peer.ServerOptions{})
	c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
	r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: 1 << 20}
	n, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, &failingWriter{limit: 100 << 10})
	if !peer.IsWriteError(err) || !errors.Is(err, errDisk) || n > 100<<10 {
		t.Fatalf("ReadRange = %d, %v; want a write error wrapping %v", n, err, errDisk)
	}
	var buf bytes.Buffer
	r.Path = "g"
	if _, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, &buf); !errors.Is(err, peer.ErrNotHeld) || peer.IsWriteError(err) {
		t.Fatalf("ReadRange of a missing file = %v; want ErrNotHeld, no write error", err)
	}
}

// TestClientRefusesBadInput: a request that cannot be right is not sent.
func TestClientRefusesBadInput(t *testing.T) {
	var hits atomic.Int32
	addr := peerAt(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		answer("bytes 10-99/*", 90, make([]byte, 90))(w, r)
	})
	for _, tc := range []struct {
		name   string
		addr   string
		secret []byte
		edit   func(*peer.RangeRequest)
		want   string
	}{
		{"no node", addr, testSecret, nil, "node"},
		{"no address", "", testSecret, nil, "address"},
		{"no secret", addr, nil, nil, "secret"},
		{"empty range", addr, testSecret, func(r *peer.RangeRequest) { r.N = 0 }, "range"},
		{"negative offset", addr, testSecret, func(r *peer.RangeRequest) { r.Off = -1 }, "range"},
		{"overflowing range", addr, testSecret, func(r *peer.RangeRequest) { r.Off = 1<<63 - 10 }, "range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clientRange
			if tc.edit != nil {
				tc.edit(&r)
			}
			node := "node-a"
			if tc.name == "no node" {
				node = ""
			}
			c := peer.NewClient(peer.ClientOptions{Node: node})
			if _, err := c.ReadRange(context.Background(), tc.addr, tc.secret, r, 0, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadRange = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("%d requests reached the peer", n)
	}
}

// BenchmarkReadRange: one 8 MiB range over loopback, uncapped, through
// the server and the client (the protocol's own cost, no disk).
func BenchmarkReadRange(b *testing.B) {
	const size = 8 << 20
	st := &fakeStore{open: func(_ context.Context, r peer.RangeRequest, _ time.Duration) (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(zeros{}, r.N)), nil
	}}
	s, err := peer.NewServer(peer.ServerOptions{Store: st, Secret: func() []byte { return testSecret }, Rate: 1 << 40, Streams: 8})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
	r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: size}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := c.ReadRange(context.Background(), hs.Listener.Addr().String(), testSecret, r, 0, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
