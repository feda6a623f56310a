package release_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// checkErr is the one assertion every validation table uses. An empty field
// means the input must be accepted; otherwise err must wrap ErrInvalid, be a
// *FieldError for exactly that field, start its message with the field, and
// contain reason (when reason is set), so a row cannot pass on the wrong rule.
func checkErr(t *testing.T, err error, field, reason string) {
	t.Helper()
	if field == "" {
		if reason != "" {
			t.Fatalf("bad table row: reason %q set on a row that expects success", reason)
		}
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		return
	}
	wantInvalid(t, err, field)
	if reason != "" && !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not contain %q", err, reason)
	}
}

// wantInvalid asserts a validation error that names field.
func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got nil error, want an invalid %s", field)
	}
	if !errors.Is(err, release.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var fe *release.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("FieldError.Field = %q, want %q (error %q)", fe.Field, field, err)
	}
	if !strings.HasPrefix(err.Error(), field) {
		t.Errorf("error %q does not start with the field %q", err, field)
	}
}
