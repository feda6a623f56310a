package peer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

const goodPath = "/v1/peer/releases/search/2026-12-01T00-00-00/index/shards/a.bin"

func testFiles() map[string][]byte {
	return map[string][]byte{"search/2026-12-01T00-00-00/index/shards/a.bin": content(1000)}
}

// rawGet sends one request as a broken or hostile client might: the path
// as given (nothing cleaned), a valid token and range unless edit changes
// them.
func rawGet(t *testing.T, ts *testServer, method, path string, edit func(h http.Header)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+peer.Token(testSecret, "node-a"))
	req.Header.Set(peer.HeaderNode, "node-a")
	req.Header.Set("Range", "bytes=0-9")
	if edit != nil {
		edit(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func set(k, v string) func(http.Header) { return func(h http.Header) { h.Set(k, v) } }

func del(k string) func(http.Header) { return func(h http.Header) { h.Del(k) } }

// TestServerRefusesBadInput: every malformed, unauthorized or hostile
// request is answered with its 4xx and one line naming what was wrong,
// and the Store is never asked for anything.
func TestServerRefusesBadInput(t *testing.T) {
	const pre = "/v1/peer/releases/"
	otherSecret := []byte("fedcba9876543210fedcba9876543210")
	for _, tc := range []struct {
		name     string
		method   string // GET when empty
		path     string // goodPath when empty
		edit     func(http.Header)
		noSecret bool
		want     int
		wantBody string
	}{
		{name: "POST", method: http.MethodPost, want: 405, wantBody: "method"},
		{name: "PUT", method: http.MethodPut, want: 405, wantBody: "method"},
		{name: "HEAD", method: http.MethodHead, want: 405},
		{name: "no token", edit: del("Authorization"), want: 401, wantBody: "Authorization"},
		{name: "wrong token", edit: set("Authorization", "Bearer "+peer.Token(otherSecret, "node-a")), want: 401, wantBody: "token refused"},
		{name: "token of another node", edit: set(peer.HeaderNode, "node-b"), want: 401, wantBody: "token refused"},
		{name: "no node", edit: del(peer.HeaderNode), want: 401, wantBody: peer.HeaderNode},
		{name: "node not a node name", edit: set(peer.HeaderNode, "Node_A"), want: 400, wantBody: peer.HeaderNode},
		{name: "basic auth", edit: set("Authorization", "Basic bm9kZS1hOng="), want: 401, wantBody: "Bearer"},
		{name: "server has no secret", noSecret: true, want: 401, wantBody: "no peer secret"},
		{name: "dot-dot", path: pre + "search/2026-12-01T00-00-00/index/../../../../etc/passwd", want: 400, wantBody: "file"},
		{name: "encoded dot-dot", path: pre + "search/2026-12-01T00-00-00/index/%2e%2e/%2e%2e/etc/passwd", want: 400, wantBody: "file"},
		{name: "absolute", path: pre + "search/2026-12-01T00-00-00/index//etc/passwd", want: 400, wantBody: "file"},
		{name: "encoded slash", path: pre + "search/2026-12-01T00-00-00/index/%2Fetc%2Fpasswd", want: 400, wantBody: "segment"},
		{name: "NUL", path: pre + "search/2026-12-01T00-00-00/index/a%00b", want: 400, wantBody: "file"},
		{name: "dot segment", path: pre + "search/2026-12-01T00-00-00/index/./a.bin", want: 400, wantBody: "file"},
		{name: "channel", path: pre + "Search_X/2026-12-01T00-00-00/index/a.bin", want: 400, wantBody: "channel"},
		{name: "release", path: pre + "search/..hidden/index/a.bin", want: 400, wantBody: "release"},
		{name: "release dot-dot", path: pre + "search/%2e%2e/index/a.bin", want: 400, wantBody: "release"},
		{name: "dataset", path: pre + "search/2026-12-01T00-00-00/-index/a.bin", want: 400, wantBody: "dataset"},
		{name: "dataset too long", path: pre + "search/v1/" + strings.Repeat("d", release.MaxDatasetNameLength+1) + "/a.bin", want: 400, wantBody: "dataset"},
		{name: "no file", path: pre + "search/2026-12-01T00-00-00/index", want: 400, wantBody: "path"},
		{name: "outside the prefix", path: "/etc/passwd", want: 404, wantBody: "path"},
		{name: "query", path: goodPath + "?x=1", want: 400, wantBody: "query"},
		{name: "no Range", edit: del("Range"), want: 400, wantBody: "Range"},
		{name: "suffix Range", edit: set("Range", "bytes=-5"), want: 400, wantBody: "Range"},
		{name: "open Range", edit: set("Range", "bytes=5-"), want: 400, wantBody: "Range"},
		{name: "two ranges", edit: set("Range", "bytes=0-1,4-5"), want: 400, wantBody: "Range"},
		{name: "two Range headers", edit: func(h http.Header) { h.Add("Range", "bytes=4-5") }, want: 400, wantBody: "Range"},
		{name: "signed Range", edit: set("Range", "bytes=+0-4"), want: 400, wantBody: "Range"},
		{name: "spaced Range", edit: set("Range", "bytes= 0-4"), want: 400, wantBody: "Range"},
		{name: "backwards Range", edit: set("Range", "bytes=5-2"), want: 400, wantBody: "Range"},
		{name: "other unit", edit: set("Range", "items=0-4"), want: 400, wantBody: "Range"},
		{name: "huge Range", edit: set("Range", "bytes=0-9223372036854775807"), want: 400, wantBody: "Range"},
		{name: "overflowing Range", edit: set("Range", "bytes=0-99999999999999999999"), want: 400, wantBody: "Range"},
		{name: "identity not seq@time", edit: set(peer.HeaderIdentity, "7"), want: 400, wantBody: peer.HeaderIdentity},
		{name: "identity bad time", edit: set(peer.HeaderIdentity, "7@yesterday"), want: 400, wantBody: peer.HeaderIdentity},
		{name: "identity negative", edit: set(peer.HeaderIdentity, "-7@2026-12-01T00:00:00Z"), want: 400, wantBody: peer.HeaderIdentity},
		{name: "wait negative", edit: set(peer.HeaderWait, "-5"), want: 400, wantBody: peer.HeaderWait},
		{name: "wait fraction", edit: set(peer.HeaderWait, "1.5"), want: 400, wantBody: peer.HeaderWait},
		{name: "wait with unit", edit: set(peer.HeaderWait, "5s"), want: 400, wantBody: peer.HeaderWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{files: testFiles()}
			opts := peer.ServerOptions{}
			if tc.noSecret {
				opts.Secret = func() []byte { return nil }
			}
			ts := newTestServer(t, st, opts)
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = goodPath
			}
			resp, body := rawGet(t, ts, method, path, tc.edit)
			if resp.StatusCode != tc.want {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, body, tc.want)
			}
			if n := len(st.Calls()); n != 0 {
				t.Errorf("the Store was called %d times: %+v", n, st.Calls())
			}
			if method != http.MethodHead && (!strings.Contains(body, tc.wantBody) || strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n")) {
				t.Errorf("body %q: want one line naming %q", body, tc.wantBody)
			}
			if got := ts.metric(t, "hydra_peer_requests_total", "code", fmt.Sprint(tc.want)); got != 1 {
				t.Errorf("hydra_peer_requests_total{code=%q} = %v, want 1", fmt.Sprint(tc.want), got)
			}
		})
	}
}

// TestServerPassesWhatItParsed: the Store gets the names, range, identity
// and wait the request carried, unescaped and clamped.
func TestServerPassesWhatItParsed(t *testing.T) {
	created := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	for _, tc := range []struct {
		name     string
		path     string
		edit     func(http.Header)
		wantPath string
		wantID   release.Identity
		wantWait time.Duration
	}{
		{name: "plain", path: goodPath, wantPath: "shards/a.bin"},
		{name: "escaped names", path: "/v1/peer/releases/search/2026-12-01T00-00-00/index/sp%20ace/%25%3F%23/%C3%A9t%C3%A9", wantPath: "sp ace/%?#/été"},
		{name: "identity", path: goodPath, edit: set(peer.HeaderIdentity, "42@2026-12-01T10:00:00.123456789Z"), wantPath: "shards/a.bin", wantID: release.Identity{Seq: 42, CreatedAt: created}},
		{name: "wait", path: goodPath, edit: set(peer.HeaderWait, "1500"), wantPath: "shards/a.bin", wantWait: 1500 * time.Millisecond},
		{name: "wait clamped", path: goodPath, edit: set(peer.HeaderWait, "2001"), wantPath: "shards/a.bin", wantWait: 2 * time.Second},
		{name: "wait huge", path: goodPath, edit: set(peer.HeaderWait, "99999999999999999999999"), wantPath: "shards/a.bin", wantWait: 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{err: peer.ErrNotHeld}
			ts := newTestServer(t, st, peer.ServerOptions{MaxWait: 2 * time.Second})
			edit := func(h http.Header) {
				h.Set("Range", "bytes=100-199")
				if tc.edit != nil {
					tc.edit(h)
				}
			}
			if resp, body := rawGet(t, ts, http.MethodGet, tc.path, edit); resp.StatusCode != 404 {
				t.Fatalf("status %d (%q), want 404 from the Store's ErrNotHeld", resp.StatusCode, body)
			}
			calls := st.Calls()
			if len(calls) != 1 {
				t.Fatalf("%d Store calls, want 1", len(calls))
			}
			c := calls[0]
			want := peer.RangeRequest{Channel: "search", Version: "2026-12-01T00-00-00", Dataset: "index", Path: tc.wantPath, Off: 100, N: 100, Identity: tc.wantID}
			if !c.r.Identity.CreatedAt.Equal(want.Identity.CreatedAt) || c.r.Identity.Seq != want.Identity.Seq {
				t.Errorf("identity %v, want %v", c.r.Identity, want.Identity)
			}
			c.r.Identity, want.Identity = release.Identity{}, release.Identity{}
			if c.r != want || c.wait != tc.wantWait {
				t.Errorf("Store got %+v wait %s, want %+v wait %s", c.r, c.wait, want, tc.wantWait)
			}
		})
	}
}

// TestServerAnswers: each Store outcome becomes its status, and the
// client turns the status into its error; a 500 shows no internal detail.
func TestServerAnswers(t *testing.T) {
	data := testFiles()["search/2026-12-01T00-00-00/index/shards/a.bin"]
	r := peer.RangeRequest{Channel: "search", Version: "2026-12-01T00-00-00", Dataset: "index", Path: "shards/a.bin", Off: 10, N: 90}
	for _, tc := range []struct {
		name     string
		storeErr error
		r        func(peer.RangeRequest) peer.RangeRequest
		code     string
		wantErr  error
	}{
		{name: "served", code: "206"},
		{name: "not held", r: func(r peer.RangeRequest) peer.RangeRequest { r.Path = "shards/b.bin"; return r }, code: "404", wantErr: peer.ErrNotHeld},
		{name: "not held, wrapped", storeErr: fmt.Errorf("cache: release x: %w", peer.ErrNotHeld), code: "404", wantErr: peer.ErrNotHeld},
		{name: "not yet", storeErr: peer.ErrNotYet, code: "503", wantErr: peer.ErrNotYet},
		{name: "out of range", r: func(r peer.RangeRequest) peer.RangeRequest { r.Off = 990; r.N = 20; return r }, code: "416", wantErr: peer.ErrOutOfRange},
		{name: "store failure", storeErr: errors.New("cache: open /var/lib/hydra/secret/a.bin: input/output error"), code: "500", wantErr: peer.ErrBadAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &fakeStore{files: testFiles(), err: tc.storeErr}
			ts := newTestServer(t, st, peer.ServerOptions{})
			c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
			req := r
			if tc.r != nil {
				req = tc.r(r)
			}
			var buf bytes.Buffer
			n, err := c.ReadRange(context.Background(), ts.addr, testSecret, req, 0, &buf)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("ReadRange: %v", err)
			case tc.wantErr == nil && (n != req.N || !bytes.Equal(buf.Bytes(), data[req.Off:req.Off+req.N])):
				t.Fatalf("ReadRange wrote %d bytes, want bytes %d-%d of the file", n, req.Off, req.Off+req.N-1)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("ReadRange = %d, %v; want %v", n, err, tc.wantErr)
			case tc.wantErr != nil && (!strings.Contains(err.Error(), ts.addr) || strings.Contains(err.Error(), "/var/lib")):
				t.Errorf("error %q: want the peer's address, no internal path", err)
			}
			if got := ts.metric(t, "hydra_peer_requests_total", "code", tc.code); got != 1 {
				t.Errorf("hydra_peer_requests_total{code=%q} = %v, want 1", tc.code, got)
			}
			// The handler counts a chunk once its write returned, which
			// may be after the client has read it: let it finish.
			ts.http.Close()
			wantServed := int64(0)
			if tc.wantErr == nil {
				wantServed = req.N
			}
			if got := ts.Served("search", "2026-12-01T00-00-00"); got != wantServed || ts.ServedTotal() != wantServed {
				t.Errorf("Served = %d, ServedTotal = %d; want %d", got, ts.ServedTotal(), wantServed)
			}
			if got := ts.metric(t, "hydra_peer_served_bytes_total"); got != float64(wantServed) {
				t.Errorf("hydra_peer_served_bytes_total = %v, want %d", got, wantServed)
			}
		})
	}
}

// TestServedAccounting: counters per release add up, and Forget drops one.
func TestServedAccounting(t *testing.T) {
	files := map[string][]byte{"a/v1/d/f": content(300), "b/v1/d/f": content(300)}
	ts := newTestServer(t, &fakeStore{files: files}, peer.ServerOptions{})
	c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
	read := func(channel string, n int64) {
		t.Helper()
		r := peer.RangeRequest{Channel: channel, Version: "v1", Dataset: "d", Path: "f", N: n}
		if _, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	read("a", 100)
	read("a", 200)
	read("b", 50)
	ts.http.Close() // the handlers have counted all they sent
	if a, b, total := ts.Served("a", "v1"), ts.Served("b", "v1"), ts.ServedTotal(); a != 300 || b != 50 || total != 350 {
		t.Fatalf("served a %d, b %d, total %d; want 300, 50, 350", a, b, total)
	}
	ts.Forget("a", "v1")
	if a, b, total := ts.Served("a", "v1"), ts.Served("b", "v1"), ts.ServedTotal(); a != 0 || b != 50 || total != 350 {
		t.Fatalf("after Forget(a): served a %d, b %d, total %d; want 0, 50, 350", a, b, total)
	}
}

// TestServerCallerLeaves: a caller that goes away while the Store waits
// gets nothing, and nothing is counted as answered.
func TestServerCallerLeaves(t *testing.T) {
	opened := make(chan struct{})
	st := &fakeStore{open: func(ctx context.Context, _ peer.RangeRequest, _ time.Duration) (io.ReadCloser, error) {
		close(opened)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	ts := newTestServer(t, st, peer.ServerOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-opened; cancel() }()
	r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: 10}
	_, err := peer.NewClient(peer.ClientOptions{Node: "node-a"}).ReadRange(ctx, ts.addr, testSecret, r, time.Second, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadRange = %v, want context.Canceled", err)
	}
	ts.http.Close() // waits for the handler
	for _, code := range []string{"206", "400", "404", "500", "503"} {
		if got := ts.metric(t, "hydra_peer_requests_total", "code", code); got != 0 {
			t.Errorf("hydra_peer_requests_total{code=%q} = %v, want 0", code, got)
		}
	}
}

// blockingReader blocks its first Read until release is closed, and says
// when it started.
type blockingReader struct {
	io.Reader
	reading chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingReader) Read(p []byte) (int, error) {
	b.once.Do(func() { close(b.reading); <-b.release })
	return b.Reader.Read(p)
}

func (b *blockingReader) Close() error { return nil }

// TestServerStreams: with every stream taken, a request gets 429 at once
// (Retry-After, ErrBusy) and its reader is closed; a request waiting in
// the Store for bytes takes no stream.
func TestServerStreams(t *testing.T) {
	data := content(1000)
	r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: 1000}
	t.Run("busy", func(t *testing.T) {
		first := &blockingReader{Reader: bytes.NewReader(data), reading: make(chan struct{}), release: make(chan struct{})}
		var calls sync.Mutex
		n := 0
		st := &fakeStore{}
		st.open = func(context.Context, peer.RangeRequest, time.Duration) (io.ReadCloser, error) {
			calls.Lock()
			defer calls.Unlock()
			if n++; n == 1 {
				return first, nil
			}
			return &closeCounter{Reader: bytes.NewReader(data), f: st}, nil
		}
		ts := newTestServer(t, st, peer.ServerOptions{Streams: 1})
		c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
		done := make(chan error, 1)
		var got bytes.Buffer
		go func() {
			_, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, &got)
			done <- err
		}()
		<-first.reading
		if ts.metric(t, "hydra_peer_upload_streams") != 1 {
			t.Errorf("hydra_peer_upload_streams = %v while one range is sent, want 1", ts.metric(t, "hydra_peer_upload_streams"))
		}
		resp, body := rawGet(t, ts, http.MethodGet, "/v1/peer/releases/a/v1/d/f", nil)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "busy") {
			t.Errorf("second request: status %d, Retry-After %q, body %q; want 429, 1, busy", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if _, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, io.Discard); !errors.Is(err, peer.ErrBusy) {
			t.Errorf("ReadRange with every stream busy = %v, want ErrBusy", err)
		}
		if st.Closed() != 2 {
			t.Errorf("%d readers of refused requests closed, want 2", st.Closed())
		}
		// A caller that may wait for the bytes waits for a stream too,
		// and is served once the first transfer ends.
		waited := make(chan error, 1)
		var late bytes.Buffer
		go func() {
			_, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 10*time.Second, &late)
			waited <- err
		}()
		select {
		case err := <-waited:
			t.Errorf("a caller willing to wait was answered while the stream was busy: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		close(first.release)
		if err := <-done; err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Errorf("the first request: %v, %d bytes", err, got.Len())
		}
		if err := <-waited; err != nil || !bytes.Equal(late.Bytes(), data) {
			t.Errorf("the waiting request: %v, %d bytes", err, late.Len())
		}
	})
	t.Run("waiting holds no stream", func(t *testing.T) {
		waiting, release := make(chan struct{}), make(chan struct{})
		st := &fakeStore{}
		st.open = func(_ context.Context, r peer.RangeRequest, _ time.Duration) (io.ReadCloser, error) {
			if r.Path == "journaled" {
				close(waiting)
				<-release
				return nil, peer.ErrNotYet
			}
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		ts := newTestServer(t, st, peer.ServerOptions{Streams: 1})
		c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
		done := make(chan error, 1)
		go func() {
			w := r
			w.Path = "journaled"
			_, err := c.ReadRange(context.Background(), ts.addr, testSecret, w, 10*time.Second, io.Discard)
			done <- err
		}()
		<-waiting
		if _, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, io.Discard); err != nil {
			t.Errorf("ReadRange while another request waits in the Store: %v, want the bytes", err)
		}
		close(release)
		if err := <-done; !errors.Is(err, peer.ErrNotYet) {
			t.Errorf("the waiting request: %v, want ErrNotYet", err)
		}
	})
}

// TestUploadCap: four peers reading 8 MiB at once from a server capped
// at 2 MiB/s never get more than the cap allows over any 2-s window,
// sampled every 100 ms, and get the right bytes.
func TestUploadCap(t *testing.T) {
	const (
		rateCap = 2 << 20
		streams = 4
		each    = 2 << 20
	)
	data := content(each)
	files := map[string][]byte{}
	for i := range streams {
		files[fmt.Sprintf("a/v1/d/f%d", i)] = data
	}
	ts := newTestServer(t, &fakeStore{files: files}, peer.ServerOptions{Rate: rateCap, Streams: streams})
	type sample struct {
		before, after time.Time
		bytes         int64
	}
	var samples []sample
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			before := time.Now()
			n := ts.ServedTotal()
			samples = append(samples, sample{before, time.Now(), n})
			select {
			case <-stop:
				before := time.Now()
				samples = append(samples, sample{before, time.Now(), ts.ServedTotal()})
				return
			case <-tick.C:
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		wg.Go(func() {
			c := peer.NewClient(peer.ClientOptions{Node: "node-a"})
			r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: fmt.Sprintf("f%d", i), N: each}
			var got bytes.Buffer
			if _, err := c.ReadRange(context.Background(), ts.addr, testSecret, r, 0, &got); err != nil {
				errs <- err
			} else if !bytes.Equal(got.Bytes(), data) {
				errs <- fmt.Errorf("f%d: wrong bytes", i)
			}
		})
	}
	wg.Wait()
	ts.http.Close() // waits for the handlers, which count what they sent
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The bucket bounds what it grants over T to Rate*T + burst; a
	// chunk granted before a window and written in it adds at most one
	// chunk per stream.
	limit := int64(2*rateCap + peer.UploadBurst + streams*64<<10)
	windows, most := 0, int64(0)
	for i, a := range samples {
		for _, b := range samples[i+1:] {
			if b.after.Sub(a.before) > 2*time.Second {
				break
			}
			windows++
			most = max(most, b.bytes-a.bytes)
			if d := b.bytes - a.bytes; d > limit {
				t.Errorf("%d bytes sent within %s (from %s), more than %d", d, b.after.Sub(a.before), a.before.Format("15:04:05.000"), limit)
			}
		}
	}
	t.Logf("most sent within 2 s: %d bytes (cap %d, Rate*2+burst %d)", most, limit, 2*rateCap+peer.UploadBurst)
	if last := samples[len(samples)-1]; last.bytes != streams*each || last.after.Sub(samples[0].before) < 2*time.Second || windows == 0 {
		t.Fatalf("sampled %d bytes over %s, want %d over more than 2 s", last.bytes, last.after.Sub(samples[0].before), streams*each)
	}
}

// TestNewServerRefuses: options that cannot work are refused.
func TestNewServerRefuses(t *testing.T) {
	st := &fakeStore{}
	for _, tc := range []struct {
		name string
		opts peer.ServerOptions
		want string
	}{
		{"no store", peer.ServerOptions{Rate: 1, Streams: 1}, "Store"},
		{"no rate", peer.ServerOptions{Store: st, Streams: 1}, "rate"},
		{"no streams", peer.ServerOptions{Store: st, Rate: 1}, "streams"},
		{"negative wait", peer.ServerOptions{Store: st, Rate: 1, Streams: 1, MaxWait: -1}, "wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := peer.NewServer(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewServer = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// zeros yields zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestServerWriteStall: a caller that stops reading loses its stream
// after WriteStall, and the next caller is served.
func TestServerWriteStall(t *testing.T) {
	st := &fakeStore{open: func(_ context.Context, r peer.RangeRequest, _ time.Duration) (io.ReadCloser, error) {
		return io.NopCloser(io.LimitReader(zeros{}, r.N)), nil
	}}
	ts := newTestServer(t, st, peer.ServerOptions{Streams: 1, WriteStall: 200 * time.Millisecond})
	// A frozen caller: asks for 256 MiB, far more than the sockets
	// buffer, and reads nothing.
	conn, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /v1/peer/releases/a/v1/d/f HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%s: node-a\r\nRange: bytes=0-%d\r\n\r\n",
		peer.Token(testSecret, "node-a"), peer.HeaderNode, 256<<20-1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for ts.metric(t, "hydra_peer_upload_streams") != 0 || ts.metric(t, "hydra_peer_requests_total", "code", "206") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the frozen caller still holds its stream (streams %v, 206s %v)", ts.metric(t, "hydra_peer_upload_streams"), ts.metric(t, "hydra_peer_requests_total", "code", "206"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := peer.RangeRequest{Channel: "a", Version: "v1", Dataset: "d", Path: "f", N: 1000}
	if _, err := peer.NewClient(peer.ClientOptions{Node: "node-a"}).ReadRange(context.Background(), ts.addr, testSecret, r, 0, io.Discard); err != nil {
		t.Fatalf("the next caller: %v", err)
	}
}
