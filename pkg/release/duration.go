package release

import (
	"encoding/json"
	"reflect"
	"time"
)

// Duration is a time.Duration that travels as text ("90s", "168h") in JSON
// and YAML, the way operators write it on the command line.
type Duration struct{ time.Duration }

// MarshalJSON renders the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a Go duration string; null leaves d unchanged, as
// encoding/json does for other types.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return durationError(b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return durationError(b)
	}
	d.Duration = v
	return nil
}

// durationError is a *json.UnmarshalTypeError, not a plain error: for that
// type alone encoding/json adds the path of the field ("config.maxAge"), so
// the caller learns which duration was wrong.
func durationError(raw []byte) error {
	const maxShown = 80
	if len(raw) > maxShown {
		raw = append(raw[:maxShown:maxShown], "..."...)
	}
	return &json.UnmarshalTypeError{Value: string(raw), Type: reflect.TypeFor[Duration]()}
}
