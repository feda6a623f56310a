package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// httpError is an error that already knows its status and code.
type httpError struct {
	status int
	body   api.Error
}

func (e *httpError) Error() string { return e.body.Message }

func newHTTPError(status int, code, field, format string, args ...any) *httpError {
	return &httpError{status: status, body: api.Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}}
}

func forbidden(p auth.Principal, act auth.Action, target string) error {
	what := map[auth.Action]string{auth.Read: "read", auth.ChangeChannel: "change channel", auth.Admin: "administer", auth.Node: "act as node"}[act]
	if target != "" {
		what += " " + target
	}
	return newHTTPError(http.StatusForbidden, api.CodeForbidden, "",
		"token %s (role %s, scope %q) may not %s", p.ID, p.Role, p.Scope, what)
}

// toHTTP maps an error of the core or the store to a status and body. It
// is the one place where that mapping lives.
func toHTTP(err error) (int, api.Error) {
	var he *httpError
	var fe *release.FieldError
	switch {
	case errors.As(err, &he):
		return he.status, he.body
	case errors.As(err, &fe):
		return http.StatusBadRequest, api.Error{Code: api.CodeInvalid, Field: fe.Field, Message: err.Error()}
	case errors.Is(err, release.ErrInvalid):
		return http.StatusBadRequest, api.Error{Code: api.CodeInvalid, Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, api.Error{Code: api.CodeNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict, api.Error{Code: api.CodeExists, Message: err.Error()}
	case errors.Is(err, manager.ErrInUse), errors.Is(err, manager.ErrPinned),
		errors.Is(err, manager.ErrNoRelease), errors.Is(err, store.ErrProtected), errors.Is(err, store.ErrConflict):
		return http.StatusConflict, api.Error{Code: api.CodeConflict, Message: err.Error()}
	case errors.Is(err, manager.ErrShuttingDown):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeUnavailable, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeUnavailable, Message: err.Error()}
	}
	return http.StatusInternalServerError, api.Error{Code: api.CodeInternal, Message: err.Error()}
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := toHTTP(err)
	if status >= 500 && status != http.StatusServiceUnavailable {
		klog.ErrorS(err, "request failed", "method", r.Method, "path", r.URL.Path, "status", status)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hydra"`)
	}
	writeJSON(w, status, api.ErrorResponse{Error: body})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	if err := json.NewEncoder(w).Encode(v); err != nil {
		klog.V(2).InfoS("writing response failed", "err", err)
	}
}
