package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// describe renders an error as the single line printed after "hydra: ",
// safe to print (its text may come from the manager or a node).
// A manager error shows the server's own message (and the offending field
// when the message does not name it) instead of the client's HTTP framing.
func describe(err error) string {
	msg := err.Error()
	var ce *client.Error
	if errors.As(err, &ce) {
		msg = strings.Replace(msg, ce.Error(), managerMessage(ce), 1)
	}
	var unknownCA x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknownCA):
		msg += " (give the manager's CA with --ca-file or HYDRA_CA_FILE)"
	case errors.Is(err, context.DeadlineExceeded):
		msg += " (no answer within --timeout)"
	case errors.Is(err, context.Canceled):
		msg += " (interrupted)"
	}
	return safe(oneLine(msg))
}

// managerMessage is the manager's reason, with a hint where the fix is on
// the caller's side.
func managerMessage(e *client.Error) string {
	msg := e.Body.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Body.Field != "" && !strings.Contains(msg, e.Body.Field) {
		msg += " (field " + e.Body.Field + ")"
	}
	switch {
	case e.Status == http.StatusUnauthorized && strings.Contains(msg, "client certificate"):
		msg += "; set --client-cert and --client-key (or HYDRA_CLIENT_CERT and HYDRA_CLIENT_KEY)"
	case e.Status == http.StatusUnauthorized:
		msg += "; set --token, --token-file or HYDRA_TOKEN"
	}
	return msg
}

// oneLine folds a multi-line message so the reason stays on one line.
func oneLine(s string) string {
	lines := strings.FieldsFunc(strings.TrimSpace(s), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// Exit codes: a script tells outcomes apart by them (docs/publishing.md
// lists them). 1 is any other failure.
const (
	exitOK           = 0
	exitFailed       = 1
	exitUsage        = 2
	exitNothingNew   = 3
	exitNotFound     = 4
	exitInvalid      = 5
	exitUnauthorized = 6
	exitUnreachable  = 7
	exitConflict     = 8
)

// errNothingNew is `publish --version auto` finding no version the channel
// does not already hold.
var errNothingNew = errors.New("nothing new to publish")

// usageError is a command line the CLI cannot run: wrong arguments, an
// unknown flag.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// codedError is a refusal the CLI decides itself, before or instead of
// asking the manager, with the exit code it ends in (exitInvalid for an
// incomplete dataset, exitConflict for a version the channel holds).
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

func refuse(code int, format string, args ...any) error {
	return codedError{code: code, err: fmt.Errorf(format, args...)}
}

func asCoded(err error, target *codedError) bool { return errors.As(err, target) }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ce *client.Error
	var ue usageError
	var coded codedError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errNothingNew):
		return exitNothingNew
	case errors.As(err, &coded):
		return coded.code
	case errors.Is(err, release.ErrInvalid):
		return exitInvalid
	case errors.As(err, &ce):
		return statusExit(ce.Status)
	case unreachable(err):
		return exitUnreachable
	}
	return exitFailed
}

// statusExit maps a manager's HTTP status to an exit code.
func statusExit(status int) int {
	switch status {
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return exitInvalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitUnauthorized
	case http.StatusConflict:
		return exitConflict
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return exitUnreachable
	}
	return exitFailed
}

// unreachable reports whether err means the manager did not answer: no
// connection, or no answer in time.
func unreachable(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
