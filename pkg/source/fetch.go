package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/hydra-csi/hydra/pkg/release"
)

// ErrChanged means an object no longer is what the manifest recorded: its
// ETag differs (S3 answered If-Match with 412) or its size does.
var ErrChanged = errors.New("object changed since publish")

// ErrMissing means an object of the manifest is not there any more.
var ErrMissing = errors.New("object missing")

// ErrUnreachable is wrapped by a read that gave up without an answer from
// the store: connection refused or reset, name not resolved, no byte for
// StallTimeout. It is a passing condition, not a defect of the data.
var ErrUnreachable = errors.New("store unreachable")

// Reader reads byte ranges of a dataset's files. Implementations are safe
// for concurrent use; the cache calls ReadRange for many parts at once.
type Reader interface {
	// ReadRange streams the bytes [off, off+n) of file f of the dataset at
	// src into w, in order, each byte exactly once. Transient failures,
	// mid-body ones included, are retried with a new request that starts at
	// the first byte not yet written to w. An error from w.Write stops the
	// transfer and is returned as is (wrapped), without retry. An object
	// that is not what f records fails at once with an error wrapping
	// ErrChanged; a missing one with ErrMissing. n == 0 sends no request.
	// After an error, w may hold a prefix of the range; never more.
	ReadRange(ctx context.Context, src release.Source, f release.File, off, n int64, w io.Writer) error
}

// FetchOptions configure Readers. The zero value uses the standard AWS
// environment and the defaults below.
type FetchOptions struct {
	// Requests is the budget of concurrent requests of one Reader, across
	// all its ReadRange calls; the HTTP connection pool is sized to match.
	// Default 16.
	Requests int
	// MaxAttempts bounds the requests made for one ReadRange. Default 8.
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the exponential backoff with full
	// jitter between attempts. Defaults 100ms and 10s.
	BaseBackoff, MaxBackoff time.Duration
	// StallTimeout fails an attempt that receives no byte for this long
	// (waiting for the response or within its body); it is then retried.
	// Without it a half-open connection would hold a request slot forever.
	// Default 30s.
	StallTimeout time.Duration
	// Endpoint and Region are as in Options.
	Endpoint, Region string
	// Credentials sign S3 requests instead of the environment's chain;
	// nil for the chain. ReaderMux.WithCredentials sets them.
	Credentials *Credentials
}

const (
	defaultRequests     = 16
	defaultMaxAttempts  = 8
	defaultBaseBackoff  = 100 * time.Millisecond
	defaultMaxBackoff   = 10 * time.Second
	defaultStallTimeout = 30 * time.Second
	// copyBufferSize is the unit of reads and of writes to w: large enough
	// that a 16 MiB part costs 64 writes (each a pwrite and a hash update
	// in the cache), small enough to pool one per request in flight.
	copyBufferSize = 256 << 10
)

func (o FetchOptions) withDefaults() FetchOptions {
	if o.Requests <= 0 {
		o.Requests = defaultRequests
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = defaultMaxAttempts
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = defaultBaseBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.BaseBackoff)
	if o.StallTimeout <= 0 {
		o.StallTimeout = defaultStallTimeout
	}
	return o
}

// NewReader returns the Reader for one URI scheme (release.SchemeS3 or
// release.SchemeFile).
func NewReader(ctx context.Context, scheme string, opts FetchOptions) (Reader, error) {
	switch scheme {
	case release.SchemeS3:
		return NewS3Reader(ctx, opts)
	case release.SchemeFile:
		return NewLocalReader(), nil
	}
	return nil, fmt.Errorf("source: unknown scheme %q (want %s or %s)", scheme, release.SchemeS3, release.SchemeFile)
}

// ReaderMux is a Reader for every scheme: it hands each call to the Reader
// of the source's scheme, built on first use so that file:// work never
// depends on the AWS environment.
type ReaderMux struct {
	opts    FetchOptions
	mu      sync.Mutex
	readers map[string]Reader
	// volumes are the muxes of per-volume credentials, by ID.
	volumes map[string]*ReaderMux
}

// NewReaderMux returns a ReaderMux whose Readers are built with opts.
func NewReaderMux(opts FetchOptions) *ReaderMux {
	return &ReaderMux{opts: opts, readers: make(map[string]Reader), volumes: make(map[string]*ReaderMux)}
}

// WithCredentials returns the Reader that signs S3 requests with creds
// (nil: this mux's own). One is built per credentials and kept for the
// life of the process, each with its own connection pool; file:// reads
// do not depend on credentials.
func (m *ReaderMux) WithCredentials(creds *Credentials) Reader {
	if creds == nil || creds == m.opts.Credentials {
		return m
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.volumes[creds.ID()]; ok {
		return v
	}
	opts := m.opts
	opts.Credentials = creds
	v := NewReaderMux(opts)
	m.volumes[creds.ID()] = v
	return v
}

// ReadRange implements Reader.
func (m *ReaderMux) ReadRange(ctx context.Context, src release.Source, f release.File, off, n int64, w io.Writer) error {
	r, err := m.reader(ctx, src.Scheme)
	if err != nil {
		return err
	}
	return r.ReadRange(ctx, src, f, off, n, w)
}

func (m *ReaderMux) reader(ctx context.Context, scheme string) (Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.readers[scheme]; ok {
		return r, nil
	}
	r, err := NewReader(ctx, scheme, m.opts)
	if err != nil {
		return nil, err
	}
	m.readers[scheme] = r
	return r, nil
}

// checkRange refuses a call that no store could answer correctly: a path
// that is not a manifest path, or a range outside the file.
func checkRange(src release.Source, f release.File, off, n int64) error {
	if err := release.ValidatePath(f.Path); err != nil {
		return fmt.Errorf("source: %s: %w", src, err)
	}
	// n > f.Size-off rather than off+n > f.Size: no overflow.
	if off < 0 || n < 0 || off > f.Size || n > f.Size-off {
		return fmt.Errorf("source: %s%s: range of %d bytes at offset %d is outside the file's %d bytes",
			src, f.Path, n, off, f.Size)
	}
	return nil
}

// copyBuffers pools the buffers of copyN; each request in flight holds one.
var copyBuffers = sync.Pool{New: func() any {
	b := make([]byte, copyBufferSize)
	return &b
}}

// writeError is an error returned by the caller's writer. It is never
// retried: the writer is the caller's, and so is its failure (a full disk).
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// copyN copies exactly n bytes from r to w in buffer-sized writes and
// returns how many bytes w accepted. Reads fill the buffer first (ReadFull)
// so w sees few, large writes. A read failure comes back as is, after the
// bytes read before it were written; an end of r before n bytes is
// io.ErrUnexpectedEOF; a failed write is a *writeError.
func copyN(w io.Writer, r io.Reader, n int64) (int64, error) {
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	buf := *bufp
	var written int64
	for written < n {
		chunk := buf[:min(int64(len(buf)), n-written)]
		nr, rerr := io.ReadFull(r, chunk)
		if nr > 0 {
			nw, werr := w.Write(chunk[:nr])
			written += int64(nw)
			if werr == nil && nw != nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return written, &writeError{err: werr}
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				rerr = io.ErrUnexpectedEOF // ReadFull's EOF: nothing at all came
			}
			return written, rerr
		}
	}
	return written, nil
}

// errStalled marks an attempt that received nothing for StallTimeout.
var errStalled = errors.New("stalled")

// bodyError is a failure while reading a response body the store had
// accepted to send; a reset connection or a short body. Always transient.
type bodyError struct {
	err           error
	written, want int64
}

func (e *bodyError) Error() string {
	return fmt.Sprintf("body broke after %d of %d bytes: %v", e.written, e.want, e.err)
}
func (e *bodyError) Unwrap() error { return e.err }

// retryableCodes are the S3 error codes of passing conditions: overload,
// a request that took too long, a clock that the SDK corrects from the
// response's Date. Some come with statuses (400, 403) that mean "permanent"
// otherwise.
var retryableCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "RequestTimeout": true, "RequestTimeTooSkewed": true,
	"InternalError": true, "ServiceUnavailable": true,
}

// retryable reports whether another attempt may succeed: failures of the
// network and passing overload of the store, never the caller's writer, a
// changed or missing object, refused access or a malformed request. The
// caller's context is checked before, so a cancellation is never retried.
func retryable(err error) bool {
	var (
		we *writeError
		be *bodyError
	)
	switch {
	case errors.As(err, &we), errors.Is(err, ErrChanged), errors.Is(err, ErrMissing),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &be), errors.Is(err, errStalled),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true // the store was sending; the connection failed
	}
	status, code := statusOf(err)
	if retryableCodes[code] {
		return true
	}
	if status != 0 {
		// 501 Not Implemented is the store's final word on a request.
		return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests ||
			(status >= 500 && status != http.StatusNotImplemented)
	}
	// No HTTP answer at all: refused, reset, timed out, unresolvable. Any
	// such failure to send is the network's, as is any net.Error.
	var (
		sendErr *smithyhttp.RequestSendError
		netErr  net.Error
	)
	return errors.As(err, &sendErr) || errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// statusOf returns the HTTP status and S3 error code of an SDK error, zero
// values where there are none.
func statusOf(err error) (status int, code string) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return status, code
}

// backoff returns the wait before attempt+1, after attempt failures:
// uniform in [0, min(max, base·2^(attempt-1))] ("full jitter"). Jitter
// spreads the retries of the many parts that one throttling episode or one
// dropped connection pool fails at the same moment.
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	ceiling := base
	for i := 1; i < attempt && ceiling < maxWait; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, maxWait)
	return time.Duration(rand.Int64N(int64(ceiling) + 1)) //nolint:gosec // G404: jitter, not a secret
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
