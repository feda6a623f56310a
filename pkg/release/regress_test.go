package release_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestParseSourceFuzzFindings pins the fixes for inputs the fuzzer found.
func TestParseSourceFuzzFindings(t *testing.T) {
	for _, bad := range []string{"s3://bucket//", "s3://bucket//a/", "file:///{VERSION}%7BVERSION%7D/"} {
		if _, err := release.ParseSource(bad); !errors.Is(err, release.ErrInvalid) {
			t.Errorf("ParseSource(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	src, err := release.ParseSource("file:///data/100%25/{VERSION}/")
	if err != nil {
		t.Fatal(err)
	}
	if src.Prefix != "/data/100%/{VERSION}/" {
		t.Fatalf("prefix %q", src.Prefix)
	}
	again, err := release.ParseSource(src.WithVersion("v1").String())
	if err != nil || again.Prefix != "/data/100%/v1/" {
		t.Fatalf("round trip of %q: %+v, %v", src.WithVersion("v1").String(), again, err)
	}
}

func TestDurationNull(t *testing.T) {
	var c release.Config
	c.MaxAge = release.Duration{Duration: time.Hour}
	if err := json.Unmarshal([]byte(`{"maxAge":null}`), &c); err != nil {
		t.Fatalf("null duration: %v", err)
	}
	if c.MaxAge.Duration != time.Hour {
		t.Fatalf("null changed the duration to %v", c.MaxAge)
	}
}
