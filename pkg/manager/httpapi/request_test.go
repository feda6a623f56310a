package httpapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeBodyOfUnknownLength: a body without Content-Length is held to
// the limit while it is decoded, and a body cut short is a read error,
// not malformed JSON.
func TestDecodeBodyOfUnknownLength(t *testing.T) {
	cut := io.MultiReader(strings.NewReader(`{"name":"ab`), errReader{io.ErrUnexpectedEOF})
	for _, tc := range []struct {
		name   string
		body   io.Reader
		status int
		want   string
	}{
		{"over the limit", strings.NewReader(`{"name":"` + strings.Repeat("a", 100) + `"}`), http.StatusRequestEntityTooLarge, "exceeds 64 bytes"},
		{"cut short", cut, http.StatusBadRequest, "reading body: unexpected EOF"},
		{"within the limit", strings.NewReader(`{"name":"a"}`), 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/channels", tc.body)
			r.ContentLength = -1
			var v struct{ Name string }
			err := decode(r, 64, &v)
			if tc.status == 0 {
				if err != nil || v.Name != "a" {
					t.Fatalf("decode = %v, %+v; want name a", err, v)
				}
				return
			}
			var he *httpError
			if !errors.As(err, &he) || he.status != tc.status || !strings.Contains(he.body.Message, tc.want) {
				t.Fatalf("decode = %v, want %d %q", err, tc.status, tc.want)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
