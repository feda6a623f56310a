package main

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"strings"

	"github.com/hydra-csi/hydra/pkg/client"
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
