package driver

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Errors of the driver's own making; toStatus maps them to codes.
var (
	// errInFlight: another RPC works on the same volume (Aborted).
	errInFlight = errors.New("an operation on this volume is already in flight")
	// errPrecondition: the call comes out of order or asks for what the
	// volume cannot do, e.g. publish before stage (FailedPrecondition).
	errPrecondition = errors.New("failed precondition")
	// errNotFound: no such volume where the caller says (NotFound).
	errNotFound = errors.New("not found")
	// errExists: the volume exists with an incompatible spec (AlreadyExists).
	errExists = errors.New("already exists")
	// errOutOfRange: a capacity the volume cannot honour (OutOfRange).
	errOutOfRange = errors.New("out of range")
	// errUnavailable: a peer answered that it is overloaded or cannot
	// serve for now, e.g. the Kubernetes API (Unavailable).
	errUnavailable = errors.New("unavailable")
)

// throttleCodes are S3 error codes of a store that is overloaded or
// unreachable for now: the call may succeed later (Unavailable).
var throttleCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
	"TooManyRequestsException": true, "ServiceUnavailable": true, "RequestTimeout": true,
}

// toStatus is the one mapping from the errors of the driver and the
// packages below it to gRPC codes (docs/design.md §7). Its message is err's text,
// which names the field or object at fault. A gRPC status passes as is.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

// codeOf picks the code of err; the order matters where an error could
// match two rows (a cancelled download is Canceled, not Unavailable).
func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, release.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, source.ErrDenied):
		// The volume's S3 credentials (or the node's) may not read an
		// object of the release; the message names it.
		return codes.PermissionDenied
	case errors.Is(err, errInFlight):
		return codes.Aborted
	case errors.Is(err, errNotFound), errors.Is(err, source.ErrMissing),
		errors.Is(err, cache.ErrNotStored), errors.Is(err, cache.ErrNoView):
		return codes.NotFound
	case errors.Is(err, errPrecondition), errors.Is(err, cache.ErrPinned):
		return codes.FailedPrecondition
	case errors.Is(err, errExists), errors.Is(err, cache.ErrViewConflict):
		return codes.AlreadyExists
	case errors.Is(err, errOutOfRange):
		return codes.OutOfRange
	case errors.Is(err, cache.ErrNoSpace), errors.Is(err, syscall.ENOSPC):
		return codes.ResourceExhausted
	case errors.Is(err, cache.ErrVerify), errors.Is(err, source.ErrChanged):
		return codes.Internal
	}
	if c, ok := managerCode(err); ok {
		return c
	}
	if errors.Is(err, errUnavailable) || errors.Is(err, source.ErrUnreachable) || unavailable(err) {
		return codes.Unavailable
	}
	return codes.Internal
}

// managerCode maps an HTTP answer of the manager.
func managerCode(err error) (codes.Code, bool) {
	var e *client.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	switch {
	case e.Status == http.StatusNotFound:
		return codes.NotFound, true
	case e.Status == http.StatusBadRequest:
		return codes.InvalidArgument, true
	case e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout, e.Status >= 500:
		return codes.Unavailable, true
	}
	// 401/403: the plugin's token is wrong; retrying will not help.
	return codes.Internal, true
}

// unavailable reports a manager or object store that cannot be reached or
// throttles: the network failed (refused, reset, name not resolved, timed
// out), or S3 answered with a throttling code or a 429/502/503/504 after
// the source's retries.
func unavailable(err error) bool {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && throttleCodes[apiErr.ErrorCode()] {
		return true
	}
	// A request that was never answered is a ResponseError too, with
	// status 0: it falls through to the network checks below.
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0 {
		s := respErr.HTTPStatusCode()
		return s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable || s == http.StatusBadGateway || s == http.StatusGatewayTimeout
	}
	var (
		sendErr *smithyhttp.RequestSendError
		netErr  net.Error
	)
	return errors.As(err, &sendErr) || errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
