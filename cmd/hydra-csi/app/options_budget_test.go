package app

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestBudgetFlags: the watermarks are checked at start, naming the flag.
func TestBudgetFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		wantErr   string
		high, low int
	}{
		{nil, "", 85, 75},
		{[]string{"--cache-high-watermark=100", "--cache-low-watermark=1"}, "", 100, 1},
		{[]string{"--cache-high-watermark=0"}, "--cache-high-watermark", 0, 0},
		{[]string{"--cache-high-watermark=101"}, "--cache-high-watermark", 0, 0},
		{[]string{"--cache-low-watermark=0"}, "--cache-low-watermark", 0, 0},
		{[]string{"--cache-low-watermark=-5"}, "--cache-low-watermark", 0, 0},
		{[]string{"--cache-low-watermark=85"}, "--cache-low-watermark", 0, 0},
		{[]string{"--cache-high-watermark=60"}, "--cache-low-watermark", 0, 0},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			o := DefaultOptions()
			o.NodeID, o.Manager = "node-a", "http://manager:8080"
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.wantErr)
			case tc.wantErr == "" && (o.CacheHighWatermark != tc.high || o.CacheLowWatermark != tc.low):
				t.Fatalf("watermarks %d/%d, want %d/%d", o.CacheHighWatermark, o.CacheLowWatermark, tc.high, tc.low)
			}
		})
	}
}
