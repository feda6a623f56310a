package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// S3Reader reads byte ranges of s3:// datasets with ranged GETs. One client
// and one connection pool serve every call and goroutine.
//
// Retries are all ours: the SDK's retryer is off (aws.NopRetryer). The SDK
// can only retry a request until its response headers arrive, while most
// failures of a large download happen later, mid-body, where only the caller
// can resume. Two layers would mean two policies and up to MaxAttempts²
// requests per range; one loop gives one policy and one attempt counter for
// refused requests and broken bodies alike. It also avoids the SDK's retry
// quota, which a burst of throttling across many parts would drain and then
// fail requests without trying them.
type S3Reader struct {
	client *s3.Client
	opts   FetchOptions
	// slots is the request budget: a token per GET in flight. A range
	// waiting out its backoff holds none.
	slots chan struct{}
}

// NewS3Reader builds the s3:// Reader from the standard AWS environment and
// config files, like NewS3, with a transport sized for opts.Requests.
func NewS3Reader(ctx context.Context, opts FetchOptions) (*S3Reader, error) {
	opts = opts.withDefaults()
	client, err := newS3Client(ctx, opts.Endpoint, opts.Region, opts.Credentials, rangeClientOptions(opts.Requests))
	if err != nil {
		return nil, err
	}
	return &S3Reader{client: client, opts: opts, slots: make(chan struct{}, opts.Requests)}, nil
}

// rangeClientOptions tunes the client for many concurrent ranged GETs.
func rangeClientOptions(requests int) func(*s3.Options) {
	return func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{} // see S3Reader
		o.RetryMaxAttempts = 0       // else AWS_MAX_ATTEMPTS wraps the retryer again
		// A checksum covers the whole object, never a part of it; the
		// cache verifies whole files. (An unset ChecksumMode already means
		// no validation; this keeps it so whatever the SDK's default.)
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.HTTPClient = rangeHTTPClient(o.HTTPClient, requests)
	}
}

// rangeHTTPClient tunes the SDK's client (which carries AWS_CA_BUNDLE and
// the proxy settings) rather than replacing it.
func rangeHTTPClient(c s3.HTTPClient, requests int) s3.HTTPClient {
	b, ok := c.(*awshttp.BuildableClient)
	if !ok {
		b = awshttp.NewBuildableClient()
	}
	// The SDK's own read timeout arms a deadline on every connection read,
	// idle pooled connections included; our stall timer covers only the
	// time a request waits for bytes.
	return b.WithReadTimeout(0).WithTransportOptions(func(tr *http.Transport) {
		// Idle connections for every request slot: a pool smaller than
		// the budget closes and re-dials connections all the time.
		tr.MaxIdleConns = max(tr.MaxIdleConns, requests)
		tr.MaxIdleConnsPerHost = requests
		tr.MaxConnsPerHost = requests
		// Large reads straight into the copy buffer. The write buffer
		// stays small: a GET has no body.
		tr.ReadBufferSize = copyBufferSize
		// Bytes as stored: a gzip'd object must not be decoded.
		tr.DisableCompression = true
		// HTTP/1.1 only: one TCP connection per request in flight spreads
		// load over S3's front ends; HTTP/2 would multiplex onto one.
		tr.ForceAttemptHTTP2 = false
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP1(true)
	})
}

// ReadRange implements Reader.
func (r *S3Reader) ReadRange(ctx context.Context, src release.Source, f release.File, off, n int64, w io.Writer) error {
	if err := r.check(src, f, off, n); err != nil || n == 0 {
		return err
	}
	req := rangeRequest{obj: "s3://" + src.Bucket + "/" + src.Prefix + f.Path, bucket: src.Bucket,
		key: src.Prefix + f.Path, file: f, off: off, n: n}
	var done int64 // bytes w has accepted: the next attempt starts after them
	for attempt := 1; ; attempt++ {
		got, err := r.attempt(ctx, req, off+done, n-done, w)
		done += got
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return req.failure(err)
		}
		if attempt >= r.opts.MaxAttempts {
			return req.exhausted(err, attempt, done)
		}
		wait := backoff(attempt, r.opts.BaseBackoff, r.opts.MaxBackoff)
		klog.FromContext(ctx).V(4).Info("source: retrying range", "object", req.obj, "range", req.span(),
			"attempt", attempt, "written", done, "backoff", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (r *S3Reader) check(src release.Source, f release.File, off, n int64) error {
	if src.Scheme != release.SchemeS3 {
		return fmt.Errorf("source: %s: not an s3:// URI", src)
	}
	if err := unresolved(src); err != nil {
		return err
	}
	return checkRange(src, f, off, n)
}

// attempt makes one GET of bytes [off, off+n) and copies its body to w; it
// returns how many bytes w accepted, also on failure.
func (r *S3Reader) attempt(ctx context.Context, req rangeRequest, off, n int64, w io.Writer) (int64, error) {
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The stall timer cancels the attempt, never the caller's context; it
	// runs only while we wait for the store (see stallReader).
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(r.opts.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	written, err := r.get(actx, req, off, n, w, stall)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
		err = fmt.Errorf("no data for %v: %w", r.opts.StallTimeout, errStalled)
	}
	return written, err
}

func (r *S3Reader) get(ctx context.Context, req rangeRequest, off, n int64, w io.Writer, stall *time.Timer) (int64, error) {
	in := &s3.GetObjectInput{
		Bucket: aws.String(req.bucket),
		Key:    aws.String(req.key),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1)),
	}
	if req.file.ETag != "" {
		in.IfMatch = aws.String(req.file.ETag)
	}
	out, err := r.client.GetObject(ctx, in)
	stall.Stop()
	if err != nil {
		return 0, err
	}
	defer out.Body.Close()
	if err := req.checkServed(out, off, n); err != nil {
		return 0, err
	}
	written, err := copyN(w, &stallReader{r: out.Body, timer: stall, timeout: r.opts.StallTimeout}, n)
	if err != nil {
		var we *writeError
		if !errors.As(err, &we) {
			err = &bodyError{err: err, written: written, want: n}
		}
	}
	return written, err
}

// stallReader arms the stall timer only while a Read waits for the store,
// so time the caller's writer spends (a slow disk) never counts as a stall.
type stallReader struct {
	r       io.Reader
	timer   *time.Timer
	timeout time.Duration
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.timeout)
	n, err := s.r.Read(p)
	s.timer.Stop()
	return n, err
}

// rangeRequest is one ReadRange call: what to fetch and how to name it.
type rangeRequest struct {
	obj, bucket, key string
	file             release.File
	off, n           int64
}

// span is the caller's range as an HTTP Range would say it.
func (q rangeRequest) span() string { return fmt.Sprintf("bytes %d-%d", q.off, q.off+q.n-1) }

// checkServed verifies that a response holds what was asked: bytes
// [off, off+n) of an object of the manifest's size and ETag. If-Match
// already guards the ETag; checking it again costs nothing and catches
// stores that ignore the header.
func (q rangeRequest) checkServed(out *s3.GetObjectOutput, off, n int64) error {
	if etag := aws.ToString(out.ETag); q.file.ETag != "" && etag != "" && trimQuotes(etag) != trimQuotes(q.file.ETag) {
		return q.changed(fmt.Sprintf("ETag is %s, manifest says %s", etag, q.file.ETag), nil)
	}
	start, end, total, err := servedRange(out)
	if err != nil {
		return &readableError{msg: fmt.Sprintf("source: %s: %s: %v", q.obj, q.span(), err), err: err}
	}
	if total != q.file.Size {
		return q.changed(fmt.Sprintf("%d bytes now, manifest says %d", total, q.file.Size), nil)
	}
	if start != off || end != off+n-1 {
		return &readableError{msg: fmt.Sprintf("source: %s: asked for bytes %d-%d, the store sent bytes %d-%d",
			q.obj, off, off+n-1, start, end)}
	}
	return nil
}

// servedRange reads the range a response holds from Content-Range, or, on
// a 200 without one, the whole object from Content-Length.
func servedRange(out *s3.GetObjectOutput) (start, end, total int64, err error) {
	cr := aws.ToString(out.ContentRange)
	if cr == "" {
		if out.ContentLength == nil {
			return 0, 0, 0, errors.New("response has neither Content-Range nor Content-Length")
		}
		total = *out.ContentLength
		return 0, total - 1, total, nil
	}
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &total); err != nil {
		return 0, 0, 0, fmt.Errorf("unreadable Content-Range %q", cr)
	}
	return start, end, total, nil
}

func trimQuotes(etag string) string { return strings.Trim(etag, `"`) }

// failure turns an error that is not retried into one that names the
// object and, for a changed or missing object, wraps the sentinel.
func (q rangeRequest) failure(err error) error {
	var re *readableError
	if errors.As(err, &re) {
		return err // already complete (checkServed)
	}
	status, code := statusOf(err)
	switch {
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed":
		return q.changed("ETag "+q.file.ETag+" no longer matches", err)
	case status == http.StatusRequestedRangeNotSatisfiable || code == "InvalidRange":
		return q.changed(fmt.Sprintf("shorter than the manifest's %d bytes", q.file.Size), err)
	case status == http.StatusNotFound || code == "NoSuchKey":
		return &readableError{msg: fmt.Sprintf("source: %s: %v (%s)", q.obj, ErrMissing, detail(err)),
			err: errors.Join(ErrMissing, err)}
	case status == http.StatusForbidden || code == "AccessDenied":
		// The store's message, never the request: it says which key was
		// refused at most by its ID, and the secret never leaves the signer.
		return &readableError{msg: fmt.Sprintf("source: %s: %v (%s)", q.obj, ErrDenied, detail(err)),
			err: errors.Join(ErrDenied, err)}
	}
	return &readableError{msg: fmt.Sprintf("source: %s: %s: %s", q.obj, q.span(), detail(err)), err: err}
}

func (q rangeRequest) changed(why string, err error) error {
	msg := fmt.Sprintf("source: %s: %v: %s", q.obj, ErrChanged, why)
	if err != nil {
		msg += " (" + detail(err) + ")"
	}
	return &readableError{msg: msg, err: errors.Join(ErrChanged, err)}
}

func (q rangeRequest) exhausted(err error, attempts int, written int64) error {
	// Every attempt failed on retryable grounds; without an HTTP status the
	// store was never heard from (refused, reset, unresolvable, stalled):
	// the caller may try again later (ErrUnreachable).
	msg := fmt.Sprintf("source: %s: %s: giving up after %d attempts (%d of %d bytes written): %s",
		q.obj, q.span(), attempts, written, q.n, detail(err))
	if status, _ := statusOf(err); status == 0 {
		err = errors.Join(ErrUnreachable, err)
	}
	return &readableError{msg: msg, err: err}
}

// detail is what the store or the network said, without the SDK's
// operation name and request IDs: "503 SlowDown: Please reduce your
// request rate.", or the transport's error.
func detail(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		s := apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" {
			s += ": " + m
		}
		if status, _ := statusOf(err); status != 0 {
			s = fmt.Sprint(status, " ", s)
		}
		return s
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) && sendErr.Err != nil {
		return sendErr.Err.Error()
	}
	return err.Error()
}
