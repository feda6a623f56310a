package cache_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestFaultsNeverWrongBytes: with 500s, connection resets, truncated
// bodies and slow responses injected between the cache and MinIO, every
// download ends in the exact release or a clear error — never wrong bytes.
func TestFaultsNeverWrongBytes(t *testing.T) {
	e := newS3Env(t)
	want := map[string][]byte{}
	for i := range 6 {
		body := content(fmt.Sprint("fault", i), 3<<20+i*4099)
		want[fmt.Sprintf("d/f%d", i)] = body
		alg := types.ChecksumAlgorithmCrc64nvme
		if i%2 == 1 {
			alg = "" // size and ETag only
		}
		e.put(t, fmt.Sprintf("faults/f%d", i), bytes.NewReader(body), alg)
	}
	rel := e.publish(t, "faults", "v1", 1, map[string]string{"d": "faults/"})
	cases := []struct {
		name   string
		faults testenv.Faults
	}{
		{"server errors", testenv.Faults{ErrorRate: 0.4, Seed: 1}},
		{"connection resets", testenv.Faults{ResetRate: 0.4, Seed: 2}},
		{"truncated bodies", testenv.Faults{TruncateRate: 0.4, Seed: 3}},
		{"slow responses", testenv.Faults{SlowRate: 0.5, SlowDelay: time.Millisecond, Seed: 4}},
		{"everything at once", testenv.Faults{ErrorRate: 0.2, ResetRate: 0.2, TruncateRate: 0.2, SlowRate: 0.2, SlowDelay: time.Millisecond, Seed: 5}},
		{"mostly failing", testenv.Faults{ErrorRate: 0.5, ResetRate: 0.45, Seed: 6}},
	}
	outcomes := map[bool]int{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.proxy.SetFaults(tc.faults)
			defer e.proxy.SetFaults(testenv.Faults{})
			injected := e.proxy.Injected()
			c := e.newCache(t, t.TempDir())
			err := ensure(t, c, rel)
			if e.proxy.Injected() == injected {
				t.Fatal("no fault was injected: the case tested nothing")
			}
			outcomes[err == nil]++
			if err != nil {
				if c.Stored(rel.Channel, rel.Version) || err.Error() == "" {
					t.Fatalf("failed download left a release in store or gave no reason: %v", err)
				}
				t.Logf("clear error: %v", err)
				return
			}
			checkStored(t, c, rel, want)
		})
	}
	if outcomes[true] == 0 {
		t.Fatal("no download succeeded under faults: retries do not work")
	}
}
