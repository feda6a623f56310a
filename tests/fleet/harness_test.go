//go:build linux

package fleet_test

import (
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/fleet"
)

// TestHarness runs three real nodes on 8 MB/s links: each downloads a
// release larger than 2 s of its link from the origin, and over every
// interval of at least 2 s its link (the host-side veth's TX) carried no
// more than the rate allows plus one burst. Then the fleet is taken down
// and nothing of it is left.
func TestHarness(t *testing.T) {
	const rate = 8 << 20
	const span = 2 * time.Second
	fleet.RequireHost(t) // here too: a skipped subtest would leave f nil
	var f *fleet.Fleet
	t.Run("download within the shaped rate", func(t *testing.T) {
		f = startFleet(t, 3, rate, nil)
		r := fleet.MixedRelease(1, 5*rate)
		samplers := make([]*fleet.Sampler, len(f.Nodes))
		for i, n := range f.Nodes {
			samplers[i] = n.SampleLink(100 * time.Millisecond)
		}
		rollOut(t, f, "harness", "v1", r)
		for i, s := range samplers {
			samples, err := s.Stop()
			if err != nil {
				t.Fatal(err)
			}
			w, ok := fleet.MaxWindow(samples, span, fleet.TX)
			if !ok {
				t.Fatalf("%s downloaded %d bytes in less than %v: its link is not shaped", f.Nodes[i].Name, r.Bytes, span)
			}
			if limit := fleet.Limit(rate, w.Duration); w.Bytes > limit {
				t.Errorf("%s: %d bytes over %v, more than %d B/s and a burst of %d allow (%d)",
					f.Nodes[i].Name, w.Bytes, w.Duration, rate, fleet.Burst(rate), limit)
			}
			t.Logf("%s: busiest %v carried %d bytes (%.1f MB/s, cap %.1f MB/s)", f.Nodes[i].Name, w.Duration, w.Bytes,
				float64(w.Bytes)/w.Duration.Seconds()/1e6, rate/1e6)
		}
	})
	if f == nil {
		t.Fatal("the fleet did not start")
	}
	if left := f.Leftovers(); len(left) > 0 {
		t.Errorf("after the test: %v", left)
	}
}
