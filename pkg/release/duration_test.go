package release_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		name string
		in   time.Duration
		json string
	}{
		{name: "zero", in: 0, json: `"0s"`},
		{name: "90s", in: 90 * time.Second, json: `"1m30s"`},
		{name: "week", in: 168 * time.Hour, json: `"168h0m0s"`},
		{name: "milliseconds", in: 1500 * time.Millisecond, json: `"1.5s"`},
		{name: "negative", in: -time.Minute, json: `"-1m0s"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(release.Duration{Duration: tc.in})
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if string(b) != tc.json {
				t.Errorf("Marshal = %s, want %s", b, tc.json)
			}
			var back release.Duration
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if back.Duration != tc.in {
				t.Errorf("round trip = %v, want %v", back.Duration, tc.in)
			}
		})
	}
}

func TestDurationUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "operator spelling", in: `"90s"`, want: 90 * time.Second},
		{name: "hours", in: `"168h"`, want: 168 * time.Hour},
		{name: "compound", in: `"1h30m"`, want: 90 * time.Minute},
		{name: "zero without unit", in: `"0"`, want: 0},
		{name: "bare number", in: `5`, wantErr: true},
		{name: "number without unit", in: `"5"`, wantErr: true},
		{name: "not a duration", in: `"abc"`, wantErr: true},
		{name: "empty string", in: `""`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
		{name: "object", in: `{"Duration":5}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := release.Duration{Duration: 42}
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Unmarshal(%s) = %v, want an error", tc.in, d.Duration)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if d.Duration != tc.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tc.in, d.Duration, tc.want)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	in := `{"keep":3,"maxAge":"168h","nodeKeep":2,"rollout":{"maxUnavailable":2,"drain":"45s","reloadTimeout":"10m"}}`
	var c release.Config
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := release.Config{
		Keep:     3,
		MaxAge:   dur(168 * time.Hour),
		NodeKeep: 2,
		Rollout:  release.RolloutPolicy{MaxUnavailable: 2, Drain: dur(45 * time.Second), ReloadTimeout: dur(10 * time.Minute)},
	}
	if c != want {
		t.Fatalf("Unmarshal = %+v, want %+v", c, want)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var back release.Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if back != want {
		t.Errorf("round trip through %s = %+v, want %+v", b, back, want)
	}
	if err := json.Unmarshal([]byte(`{"rollout":{"drain":30}}`), &c); err == nil {
		t.Errorf("numeric drain accepted, want an error")
	}
}
