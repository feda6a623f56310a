package release_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestFieldError(t *testing.T) {
	tests := []struct {
		name string
		in   *release.FieldError
		want string
	}{
		{name: "with value", in: &release.FieldError{Field: "channel", Value: "A", Reason: "bad"}, want: `channel "A": bad`},
		{name: "without value", in: &release.FieldError{Field: "datasets", Reason: "must list at least one dataset"}, want: "datasets: must list at least one dataset"},
		{name: "value quoted", in: &release.FieldError{Field: "path", Value: "a\nb", Reason: "bad"}, want: `path "a\nb": bad`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.in, release.ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", tc.in)
			}
			wrapped := fmt.Errorf("api: publish: %w", tc.in)
			if !errors.Is(wrapped, release.ErrInvalid) {
				t.Errorf("errors.Is(wrapped, ErrInvalid) = false")
			}
		})
	}
}

func TestErrorValueIsCapped(t *testing.T) {
	long := strings.Repeat("x", 5000)
	err := release.ValidatePath("/" + long)
	wantInvalid(t, err, "path")
	var fe *release.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("not a FieldError: %v", err)
	}
	if want := "/" + strings.Repeat("x", 79) + "..."; fe.Value != want {
		t.Errorf("Value = %q (%d bytes), want the first 80 bytes and \"...\"", fe.Value, len(fe.Value))
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long, want it capped", len(err.Error()))
	}
}
