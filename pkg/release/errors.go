package release

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every validation error of this package, so callers
// can map "bad input" to one status (400 over HTTP, InvalidArgument in CSI)
// without knowing which rule failed.
var ErrInvalid = errors.New("invalid")

// FieldError says which field of an input broke which rule. Field is a
// JSON-style path ("datasets[1].manifest.files[3].path") so that a publisher
// can find the offending entry in what they sent.
type FieldError struct {
	Field  string
	Value  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Unwrap lets errors.Is(err, ErrInvalid) hold for every FieldError.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, value, format string, args ...any) error {
	// Values are quoted in messages; cap them so a hostile multi-megabyte
	// string cannot turn into a multi-megabyte error line.
	const maxShown = 80
	if len(value) > maxShown {
		value = value[:maxShown] + "..."
	}
	return &FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// prefixed re-roots a FieldError under a parent field, so nested validation
// reports "datasets[0].name" rather than "name".
func prefixed(parent string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		copied := *fe
		copied.Field = parent + "." + fe.Field
		if fe.Field == "" {
			copied.Field = parent
		}
		return &copied
	}
	return err
}

// NewFieldError is a FieldError for callers outside this package that
// validate input of their own (a channel config patch).
func NewFieldError(field, value, reason string) error {
	return invalid(field, value, "%s", reason)
}
