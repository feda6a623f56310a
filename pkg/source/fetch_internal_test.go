package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/hydra-csi/hydra/pkg/release"
)

// sdkError builds the error chain GetObject returns for an HTTP error
// answer: operation error → AWS response error → API error with a code.
func sdkError(status int, code string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "from the table"},
		},
		RequestID: "req",
	}}
}

// sendError is how GetObject reports a request that got no answer.
func sendError(err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject",
		Err: &smithyhttp.RequestSendError{Err: err}}
}

func TestRetryable(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"500 InternalError", sdkError(500, "InternalError"), true},
		{"502 without a code", sdkError(502, ""), true},
		{"503 SlowDown", sdkError(503, "SlowDown"), true},
		{"504", sdkError(504, "GatewayTimeout"), true},
		{"429", sdkError(429, "TooManyRequests"), true},
		{"408", sdkError(408, ""), true},
		{"400 RequestTimeout", sdkError(400, "RequestTimeout"), true},
		{"403 RequestTimeTooSkewed", sdkError(403, "RequestTimeTooSkewed"), true},
		{"501 NotImplemented", sdkError(501, "NotImplemented"), false},
		{"400 InvalidArgument", sdkError(400, "InvalidArgument"), false},
		{"403 AccessDenied", sdkError(403, "AccessDenied"), false},
		{"404 NoSuchKey", sdkError(404, "NoSuchKey"), false},
		{"412 PreconditionFailed", sdkError(412, "PreconditionFailed"), false},
		{"416 InvalidRange", sdkError(416, "InvalidRange"), false},
		{"connection refused", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), true},
		{"reset before the answer", sendError(reset), true},
		{"bare reset", reset, true},
		{"transport EOF", sendError(io.EOF), true},
		{"SDK read timeout", sendError(&awshttp.ResponseTimeoutError{TimeoutDur: time.Second}), true},
		{"reset mid-body", &bodyError{err: reset, written: 10, want: 20}, true},
		{"short body", &bodyError{err: io.ErrUnexpectedEOF, written: 10, want: 20}, true},
		{"stall", fmt.Errorf("no data for 1s: %w", errStalled), true},
		{"writer failed", &writeError{err: syscall.ENOSPC}, false},
		{"writer failed with EOF", &writeError{err: io.ErrUnexpectedEOF}, false},
		{"changed", fmt.Errorf("x: %w", ErrChanged), false},
		{"missing", fmt.Errorf("x: %w", ErrMissing), false},
		{"cancelled", sendError(context.Canceled), false},
		{"deadline", sendError(context.DeadlineExceeded), false},
		{"unknown", errors.New("something else"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryable(tt.err); got != tt.want {
				t.Errorf("retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	base, maxWait := 100*time.Millisecond, 10*time.Second
	for attempt := 1; attempt <= 70; attempt++ {
		ceiling := min(base<<min(attempt-1, 20), maxWait)
		var top time.Duration
		for range 200 {
			d := backoff(attempt, base, maxWait)
			if d < 0 || d > ceiling {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, ceiling)
			}
			top = max(top, d)
		}
		// Full jitter spreads over the whole interval (200 draws all below
		// half of it: chance 2⁻²⁰⁰).
		if top < ceiling/2 {
			t.Errorf("backoff(%d): largest of 200 draws %v, want some above %v", attempt, top, ceiling/2)
		}
	}
}

func TestCopyN(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), copyBufferSize/8+3) // two buffers and a bit
	n := int64(len(data))
	tests := []struct {
		name    string
		r       io.Reader
		w       io.Writer
		want    int64
		wantErr func(error) bool
	}{
		{"exact", bytes.NewReader(data), &bytes.Buffer{}, n, func(err error) bool { return err == nil }},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data)), &bytes.Buffer{}, n, func(err error) bool { return err == nil }},
		{"body ends early", bytes.NewReader(data[:n-5]), &bytes.Buffer{}, n - 5,
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"body empty", bytes.NewReader(nil), &bytes.Buffer{}, 0,
			func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"read fails after data", io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(syscall.ECONNRESET)), &bytes.Buffer{}, 1000,
			func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"writer fails", bytes.NewReader(data), shortWriter{}, 7,
			func(err error) bool {
				var we *writeError
				return errors.As(err, &we) && errors.Is(err, io.ErrShortWrite)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := copyN(tt.w, tt.r, n)
			if got != tt.want || !tt.wantErr(err) {
				t.Errorf("copyN = %d, %v; want %d", got, err, tt.want)
			}
			if b, ok := tt.w.(*bytes.Buffer); ok && !bytes.Equal(b.Bytes(), data[:got]) {
				t.Errorf("writer got wrong bytes")
			}
		})
	}
}

// shortWriter accepts 7 bytes of any write and reports no error, which
// io.Writer forbids; copyN must notice.
type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return min(len(p), 7), nil }

func TestCheckServed(t *testing.T) {
	f := release.File{Path: "a", Size: 1000, ETag: `"abc"`}
	q := rangeRequest{obj: "s3://b/p/a", file: f, off: 100, n: 50}
	tests := []struct {
		name    string
		out     s3.GetObjectOutput
		changed bool
		errText string // "" for no error
	}{
		{"as asked", s3.GetObjectOutput{ContentRange: aws.String("bytes 100-149/1000"), ETag: aws.String(`"abc"`)}, false, ""},
		{"no ETag in the answer", s3.GetObjectOutput{ContentRange: aws.String("bytes 100-149/1000")}, false, ""},
		{"other ETag: If-Match ignored", s3.GetObjectOutput{ContentRange: aws.String("bytes 100-149/1000"), ETag: aws.String(`"def"`)}, true, `ETag is "def"`},
		{"other size", s3.GetObjectOutput{ContentRange: aws.String("bytes 100-149/999")}, true, "999 bytes now, manifest says 1000"},
		{"other range", s3.GetObjectOutput{ContentRange: aws.String("bytes 0-49/1000")}, false, "store sent bytes 0-49"},
		{"Range ignored", s3.GetObjectOutput{ContentLength: aws.Int64(1000)}, false, "store sent bytes 0-999"},
		{"Range ignored, other size", s3.GetObjectOutput{ContentLength: aws.Int64(10)}, true, "10 bytes now"},
		{"unreadable Content-Range", s3.GetObjectOutput{ContentRange: aws.String("bytes */1000")}, false, "unreadable Content-Range"},
		{"no length at all", s3.GetObjectOutput{}, false, "neither Content-Range nor Content-Length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.checkServed(&tt.out, 100, 50)
			if tt.errText == "" {
				if err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), q.obj) ||
				errors.Is(err, ErrChanged) != tt.changed || retryable(err) {
				t.Errorf("err = %v, want a final error naming %s with %q (ErrChanged: %v)", err, q.obj, tt.errText, tt.changed)
			}
		})
	}
}

func TestFetchOptionsDefaults(t *testing.T) {
	got := FetchOptions{MaxBackoff: time.Millisecond, BaseBackoff: time.Second}.withDefaults()
	want := FetchOptions{Requests: 16, MaxAttempts: 8, BaseBackoff: time.Second, MaxBackoff: time.Second, StallTimeout: 30 * time.Second}
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
}

// TestS3ReaderClient checks the settings that the S3 Reader's client must
// keep after the SDK resolved its own defaults.
func TestS3ReaderClient(t *testing.T) {
	none := t.TempDir() + "/none" // the developer's AWS files stay out
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_MAX_ATTEMPTS", "5") // must not bring the SDK's retries back
	r, err := NewS3Reader(t.Context(), FetchOptions{Requests: 7, Endpoint: "http://127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	o := r.client.Options()
	if o.Retryer.MaxAttempts() != 1 || o.Retryer.IsErrorRetryable(sdkError(503, "SlowDown")) {
		t.Errorf("SDK retryer makes %d attempts and retries 503: want a single attempt, retries are ours", o.Retryer.MaxAttempts())
	}
	if o.ResponseChecksumValidation != aws.ResponseChecksumValidationWhenRequired || !o.UsePathStyle {
		t.Errorf("checksum validation %v, path style %v; want when_required and path style", o.ResponseChecksumValidation, o.UsePathStyle)
	}
	b, ok := o.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		t.Fatalf("HTTP client is a %T, want the SDK's BuildableClient", o.HTTPClient)
	}
	if d, set := b.GetReadTimeout(); !set || d != 0 {
		t.Errorf("SDK read timeout %v (set %v), want explicitly off", d, set)
	}
	tr := b.GetTransport()
	if tr.MaxConnsPerHost != 7 || tr.MaxIdleConnsPerHost != 7 || tr.ReadBufferSize != copyBufferSize ||
		!tr.DisableCompression || tr.Protocols == nil || tr.Protocols.HTTP2() || !tr.Protocols.HTTP1() {
		t.Errorf("transport: conns %d, idle %d, read buffer %d, no compression %v, protocols %v",
			tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost, tr.ReadBufferSize, tr.DisableCompression, tr.Protocols)
	}
}
