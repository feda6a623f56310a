package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client defaults.
const (
	// DefaultMinRate is the floor under which a transfer is abandoned.
	DefaultMinRate = 1 << 20
	// DefaultFloorWindow is the span the floor is measured over.
	DefaultFloorWindow = 5 * time.Second
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// Node is this node's name, sent with its token.
	Node string
	// HTTP sends the requests; nil is a client tuned for peers (HTTP/1.1,
	// no compression, no proxy, 16 idle connections per peer). Redirects
	// are never followed, whichever client.
	HTTP *http.Client
	// MinRate is the floor in bytes/s (0: DefaultMinRate): a transfer
	// averaging less over any FloorWindow is abandoned with ErrSlow.
	MinRate int64
	// FloorWindow is the span the floor is measured over (0:
	// DefaultFloorWindow).
	FloorWindow time.Duration
}

// Client reads ranges from peers. It retries nothing: the caller picks
// the next source.
type Client struct {
	node    string
	http    *http.Client
	minRate int64
	window  time.Duration
}

// NewClient returns a client for opts.
func NewClient(opts ClientOptions) *Client {
	c := &Client{node: opts.Node, minRate: opts.MinRate, window: opts.FloorWindow}
	if c.minRate <= 0 {
		c.minRate = DefaultMinRate
	}
	if c.window <= 0 {
		c.window = DefaultFloorWindow
	}
	hc := defaultHTTPClient()
	if opts.HTTP != nil {
		copied := *opts.HTTP
		hc = &copied
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = hc
	return c
}

func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		// Peers are reached directly: a proxy from the environment would
		// see every node's traffic.
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// WriteError is a failure of the writer ReadRange copies into: the
// caller's side (its disk), not the peer's.
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "writing what the peer sent: " + e.Err.Error() }

func (e *WriteError) Unwrap() error { return e.Err }

// IsWriteError reports whether err came from ReadRange's writer.
func IsWriteError(err error) bool {
	var we *WriteError
	return errors.As(err, &we)
}

// ReadRange reads r from the peer at addr (host:port) and copies exactly
// r.N bytes into w, returning how many it wrote. The peer may wait up to
// wait for bytes it has not journaled yet. Errors wrap ErrNotHeld,
// ErrNotYet, ErrBusy, ErrUnauthorized, ErrOutOfRange, ErrBadAnswer or
// ErrSlow for what the peer answered, a *WriteError when w failed, and
// name addr and the range otherwise.
func (c *Client) ReadRange(ctx context.Context, addr string, secret []byte, r RangeRequest, wait time.Duration, w io.Writer) (int64, error) {
	what := fmt.Sprintf("peer: %s: %s/%s %s/%s bytes %d-%d", addr, r.Channel, r.Version, r.Dataset, r.Path, r.Off, r.Off+r.N-1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := c.newRequest(ctx, addr, secret, r, wait)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	wait = min(max(wait, 0), MaxWait)
	// The peer may hold the answer back for wait; one window more and it
	// counts as slow.
	headers := time.AfterFunc(wait+c.window, func() { cancel(ErrSlow) })
	resp, err := c.http.Do(req)
	headers.Stop()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, causeOf(ctx, err))
	}
	defer resp.Body.Close() //nolint:errcheck // read-only
	if err := checkAnswer(resp, r); err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	n, err := c.copyBody(resp.Body, r.N, w, cancel)
	if IsWriteError(err) {
		return n, fmt.Errorf("%s: after %d bytes: %w", what, n, err)
	}
	if err != nil {
		return n, fmt.Errorf("%s: after %d bytes: %w", what, n, causeOf(ctx, err))
	}
	return n, nil
}

func (c *Client) newRequest(ctx context.Context, addr string, secret []byte, r RangeRequest, wait time.Duration) (*http.Request, error) {
	switch {
	case c.node == "":
		return nil, errors.New("node: the client has no node name to show")
	case addr == "":
		return nil, errors.New("address: empty")
	case r.Off < 0 || r.N <= 0 || r.Off > (1<<63-1)-r.N:
		return nil, fmt.Errorf("range: offset %d length %d: want offset >= 0, length > 0", r.Off, r.N)
	case len(secret) == 0:
		return nil, errors.New("secret: empty, no token to show")
	}
	segs := []string{r.Channel, r.Version, r.Dataset}
	segs = append(segs, strings.Split(r.Path, "/")...)
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+PathPrefix+strings.Join(segs, "/"), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+Token(secret, c.node))
	req.Header.Set(HeaderNode, c.node)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.Off, r.Off+r.N-1))
	if !r.Identity.IsZero() {
		req.Header.Set(HeaderIdentity, FormatIdentity(r.Identity))
	}
	if wait > 0 {
		req.Header.Set(HeaderWait, strconv.FormatInt(min(wait, MaxWait).Milliseconds(), 10))
	}
	return req, nil
}

// statusErrors maps the protocol's refusals to their errors.
var statusErrors = map[int]error{
	http.StatusNotFound:                     ErrNotHeld,
	http.StatusServiceUnavailable:           ErrNotYet,
	http.StatusTooManyRequests:              ErrBusy,
	http.StatusUnauthorized:                 ErrUnauthorized,
	http.StatusRequestedRangeNotSatisfiable: ErrOutOfRange,
}

// checkAnswer holds the response to the protocol: 206, the range asked
// for, and its length.
func checkAnswer(resp *http.Response, r RangeRequest) error {
	if resp.StatusCode != http.StatusPartialContent {
		base, ok := statusErrors[resp.StatusCode]
		if !ok {
			base = ErrBadAnswer
		}
		return fmt.Errorf("status %d (%s): %w", resp.StatusCode, firstLine(resp.Body), base)
	}
	wantRange := fmt.Sprintf("bytes %d-%d/", r.Off, r.Off+r.N-1)
	got := resp.Header.Get("Content-Range")
	size, ok := strings.CutPrefix(got, wantRange)
	if _, err := strconv.ParseUint(size, 10, 64); !ok || (size != "*" && err != nil) {
		return fmt.Errorf("Content-Range %s, asked for %s...: %w", shown(got), wantRange, ErrBadAnswer)
	}
	if resp.ContentLength != r.N {
		return fmt.Errorf("Content-Length %d, asked for %d bytes: %w", resp.ContentLength, r.N, ErrBadAnswer)
	}
	return nil
}

// firstLine is the start of a refusal's body, for the error.
func firstLine(body io.Reader) string {
	line, _ := bufio.NewReader(io.LimitReader(body, 200)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		return "no reason given"
	}
	return strconv.Quote(line)
}

// copyBody copies n bytes of body into w, while a watchdog cancels ctx
// with ErrSlow when a floor window passes with fewer than MinRate*window
// bytes.
func (c *Client) copyBody(body io.Reader, n int64, w io.Writer, cancel context.CancelCauseFunc) (int64, error) {
	var got atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go c.watch(&got, cancel, stop)
	buf := make([]byte, min(n, 64<<10))
	var done int64
	for done < n {
		k, rerr := body.Read(buf[:min(n-done, int64(len(buf)))])
		if k > 0 {
			wk, werr := w.Write(buf[:k])
			done += int64(wk)
			got.Store(done)
			if werr == nil && wk < k {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return done, &WriteError{Err: werr}
			}
		}
		switch {
		case rerr == io.EOF && done < n:
			return done, fmt.Errorf("the peer's answer ended early: %w", io.ErrUnexpectedEOF)
		case rerr != nil && rerr != io.EOF:
			return done, rerr
		}
	}
	return done, nil
}

// watch checks the floor every quarter window over the last window.
func (c *Client) watch(got *atomic.Int64, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	const steps = 4
	tick := time.NewTicker(c.window / steps)
	defer tick.Stop()
	floor := float64(c.minRate) * c.window.Seconds()
	marks := []int64{0} // bytes at the start and the last ticks, the oldest first
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		now := got.Load()
		marks = append(marks, now)
		if len(marks) <= steps {
			continue
		}
		// marks[0] is from one window ago.
		if float64(now-marks[0]) < floor {
			cancel(ErrSlow)
			return
		}
		marks = marks[1:]
	}
}

// causeOf turns a failure caused by the floor into ErrSlow.
func causeOf(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrSlow) {
		// Only ErrSlow may match: the cancellation was the floor's, and
		// must not read as the caller's context.Canceled.
		return fmt.Errorf("%w (%v)", ErrSlow, err) //nolint:errorlint // see above
	}
	return err
}
