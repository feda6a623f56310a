package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestToStatus has one row per line of docs/design.md §7 (and a few per line
// where several errors share it), each wrapped as the code around it
// wraps them.
func TestToStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("driver: volume v: %w", err) }
	cases := []struct {
		line string
		err  error
		want codes.Code
	}{
		{"missing/invalid field", invalid("volume_id", "", "is required"), codes.InvalidArgument},
		{"invalid attribute (release validation)", wrap(release.ValidateChannelName("Bad_Name")), codes.InvalidArgument},
		{"operation in flight", wrap(errInFlight), codes.Aborted},
		{"channel missing (manager 404)", wrap(&client.Error{Status: http.StatusNotFound}), codes.NotFound},
		{"object missing in S3", wrap(source.ErrMissing), codes.NotFound},
		{"release not in store", wrap(cache.ErrNotStored), codes.NotFound},
		{"no view", wrap(cache.ErrNoView), codes.NotFound},
		{"publish before stage", wrap(errPrecondition), codes.FailedPrecondition},
		{"pinned view asked to flip", wrap(cache.ErrPinned), codes.FailedPrecondition},
		{"not enough space", wrap(cache.ErrNoSpace), codes.ResourceExhausted},
		{"manager unreachable", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), codes.Unavailable},
		{"manager 503", wrap(&client.Error{Status: http.StatusServiceUnavailable}), codes.Unavailable},
		{"manager 429", wrap(&client.Error{Status: http.StatusTooManyRequests}), codes.Unavailable},
		{"Kubernetes API overloaded", wrap(errUnavailable), codes.Unavailable},
		{"S3 throttled", wrap(&smithy.GenericAPIError{Code: "SlowDown"}), codes.Unavailable},
		{"S3 unreachable after the source's retries", wrap(fmt.Errorf("source: s3://b/k: giving up: %w", errors.Join(source.ErrUnreachable, syscall.ECONNREFUSED))), codes.Unavailable},
		{"S3 name not resolved", wrap(&net.DNSError{Err: "no such host", Name: "s3.example", IsNotFound: true}), codes.Unavailable},
		{"S3 connection timed out", wrap(&net.OpError{Op: "dial", Err: &timeoutError{}}), codes.Unavailable},
		{"S3 refuses the volume's credentials", wrap(fmt.Errorf("cache: release r/v: cannot read idx/a: %w", source.ErrDenied)), codes.PermissionDenied},
		{"checksum mismatch", wrap(cache.ErrVerify), codes.Internal},
		{"ETag mismatch", wrap(source.ErrChanged), codes.Internal},
		{"anything else", errors.New("disk on fire"), codes.Internal},
		{"context cancelled", wrap(context.Canceled), codes.Canceled},
		{"deadline", wrap(context.DeadlineExceeded), codes.DeadlineExceeded},
		{"a status passes as is", status.Error(codes.Unimplemented, "no"), codes.Unimplemented},
		{"view conflict", wrap(cache.ErrViewConflict), codes.AlreadyExists},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			err := toStatus(tc.err)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("toStatus(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if _, isStatus := status.FromError(tc.err); !isStatus && tc.err.Error() != status.Convert(err).Message() {
				t.Fatalf("message %q, want the error's text %q", status.Convert(err).Message(), tc.err.Error())
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("toStatus(nil) must be nil")
	}
}

func TestInFlight(t *testing.T) {
	var f inFlight
	done, err := f.acquire("v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.acquire("v1"); status.Code(toStatus(err)) != codes.Aborted {
		t.Fatalf("second acquire: %v, want Aborted", err)
	}
	other, err := f.acquire("v2")
	if err != nil {
		t.Fatalf("another volume must not wait: %v", err)
	}
	other()
	done()
	again, err := f.acquire("v1")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
}

func TestVolumeIDRoundTrip(t *testing.T) {
	id := volumeID("search-index", "pvc-1234")
	if ch, ok := channelOfVolume(id); !ok || ch != "search-index" {
		t.Fatalf("channelOfVolume(%q) = %q, %v", id, ch, ok)
	}
	if id != volumeID("search-index", "pvc-1234") {
		t.Fatal("volume IDs must be deterministic")
	}
	for _, bad := range []string{"", "hydra-", "hydra-x-zz", "fake-vol-1", "hydra-Bad-0123456789abcdef"} {
		if _, ok := channelOfVolume(bad); ok {
			t.Errorf("channelOfVolume(%q) accepted it", bad)
		}
	}
}

func TestParseAttrs(t *testing.T) {
	cases := []struct {
		name  string
		in    map[string]string
		field string // "" for success
	}{
		{"channel only", map[string]string{"channel": "idx"}, ""},
		{"all keys and kubelet's", map[string]string{"channel": "idx", "medium": "memory", "release": "v1",
			"manager": "http://m:8080", ctxPodUID: "u", ctxEphemeral: "true"}, ""},
		// What kubelet passes for a PV that csi-provisioner made.
		{"csi-provisioner's identity", map[string]string{"channel": "idx", "medium": "disk",
			"storage.kubernetes.io/csiProvisionerIdentity": "1763776036-8081-hydra.csi.dev"}, ""},
		{"missing channel", map[string]string{"medium": "disk"}, "volume_context.channel"},
		{"bad channel", map[string]string{"channel": "Not_A_Label"}, "volume_context.channel"},
		{"bad medium", map[string]string{"channel": "idx", "medium": "tape"}, "volume_context.medium"},
		{"bad release", map[string]string{"channel": "idx", "release": "../x"}, "volume_context.release"},
		{"bad manager", map[string]string{"channel": "idx", "manager": "ftp://x"}, "volume_context.manager"},
		{"unknown key", map[string]string{"channel": "idx", "chanel": "x"}, "volume_context.chanel"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseAttrs("volume_context", tc.in, false)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *release.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || status.Code(toStatus(err)) != codes.InvalidArgument {
				t.Fatalf("err = %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

// timeoutError is a dial that timed out, as net reports it.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
