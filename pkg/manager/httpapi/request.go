package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/release"
)

// authenticate turns the Authorization header into a principal. Without a
// token file every request acts as admin (the operator chose
// --insecure-no-auth).
func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	if s.opts.Tokens == nil {
		return auth.Principal{Role: auth.RoleAdmin, Scope: "*", ID: "anonymous(insecure-no-auth)"}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return auth.Principal{}, newHTTPError(http.StatusUnauthorized, api.CodeUnauthorized, "", "missing bearer token")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return auth.Principal{}, newHTTPError(http.StatusUnauthorized, api.CodeUnauthorized, "", "Authorization header must be \"Bearer TOKEN\"")
	}
	p, found := s.opts.Tokens.Lookup(strings.TrimSpace(token))
	if !found {
		return auth.Principal{}, newHTTPError(http.StatusUnauthorized, api.CodeUnauthorized, "", "unknown bearer token")
	}
	return p, nil
}

// decode reads a JSON body of at most limit bytes into v, refusing unknown
// fields and trailing data, with messages that say what was wrong. A
// Content-Length over limit is refused before anything is read. A body of
// at most LargePublishBody is read whole first, so that a decode error can
// name its field with array indices; a larger one (or one of unknown
// length) is decoded as it is read, since a copy held beside the
// decoder's own buffer doubles a large publish's memory
// (BenchmarkPublish1MFilesPeakRSS), and its errors name the field as the
// decoder does, without indices. Validation errors after decoding always
// carry indices.
func decode(r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return newHTTPError(http.StatusUnsupportedMediaType, api.CodeInvalid, "", "Content-Type must be application/json, got %q", ct)
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	var in io.Reader = &bodyReader{r: http.MaxBytesReader(nil, r.Body, limit)}
	var kept []byte
	if r.ContentLength >= 0 && r.ContentLength <= LargePublishBody {
		body, err := io.ReadAll(in)
		if err != nil {
			return readError(err, limit)
		}
		kept, in = body, bytes.NewReader(body)
	}
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, "", "body has data after the JSON value")
	}
	if err != nil {
		if rerr := readError(err, limit); rerr != nil {
			return rerr
		}
		return jsonError(kept, err)
	}
	return nil
}

// readError is the answer to a body that could not be read: too large, or
// cut short; nil when err is not the body's.
func readError(err error, limit int64) error {
	var readErr *bodyError
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return tooLarge(limit)
	case errors.As(err, &readErr):
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, "", "reading body: %v", readErr.err)
	}
	return nil
}

func tooLarge(limit int64) error {
	return newHTTPError(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "", "request body exceeds %d bytes", limit)
}

// bodyReader marks the body's read errors, so that decode tells a body
// cut short from malformed JSON; the end of the body is not an error.
type bodyReader struct{ r io.Reader }

type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &bodyError{err: err}
	}
	return n, err
}

// jsonError turns a decode error of body into a 400 naming the field, with
// its array indices where body was kept (nil: the decoder's own path).
func jsonError(body []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, "", "empty body: a JSON object is required")
	case errors.As(err, &syntax):
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, "", "malformed JSON at byte %d: %v", syntax.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		// The decoder's own type errors carry where the value ends; a
		// release.Duration's carry no offset, and sit in no array.
		if p := fieldPath(body, typ.Offset); typ.Offset > 0 && p != "" {
			field = p
		}
		if typ.Type == reflect.TypeFor[release.Duration]() {
			return newHTTPError(http.StatusBadRequest, api.CodeInvalid, field, "field %q: must be a duration such as \"30s\", got %s", field, typ.Value)
		}
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, field, "field %q: expected %s, got JSON %s", field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if p := keyPath(body, field); p != "" {
			field = p // with the objects and indices around it
		}
		return newHTTPError(http.StatusBadRequest, api.CodeInvalid, field, "unknown field %q", field)
	}
	return newHTTPError(http.StatusBadRequest, api.CodeInvalid, "", "bad JSON: %v", err)
}

// queryUint reads an optional unsigned integer query parameter.
func queryUint(r *http.Request, name string) (uint64, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, newHTTPError(http.StatusBadRequest, api.CodeInvalid, name, "query parameter %s=%q: must be a non-negative integer", name, raw)
	}
	return n, nil
}

// queryDuration reads an optional duration query parameter ("30s").
func queryDuration(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < 0 {
		return 0, newHTTPError(http.StatusBadRequest, api.CodeInvalid, name, "query parameter %s=%q: must be a duration such as 30s", name, raw)
	}
	return d, nil
}
