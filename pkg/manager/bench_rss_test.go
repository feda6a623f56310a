package manager_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// BenchmarkPublish1MFilesPeakRSS publishes a release of one million files
// (a body of 91 MiB) to a real manager on bbolt, over loopback HTTP,
// and reports the process's peak RSS during the publish and its growth
// per body byte — the memory one publish takes, which docs/manager.md
// turns into the ceiling per publish:
//
//	go test -run '^$' -bench Publish1MFilesPeakRSS -benchtime 1x ./pkg/manager/
//
// The body is built before the peak is reset and sent from one buffer, so
// the growth is the manager's: reading, decoding, validating and storing.
// The baseline (the sent body included) is reported too. GOMEMLIMIT in the
// environment applies as it would to hydra-manager.
func BenchmarkPublish1MFilesPeakRSS(b *testing.B) {
	const files = 1_000_000
	tm := managertest.Start(b, managertest.Options{})
	if _, err := tm.CreateChannel(context.Background(), api.CreateChannelRequest{Name: "big", Config: release.Config{Keep: 1000}}); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, b.N)
	for n := range bodies {
		bodies[n] = millionFileBody(b, fmt.Sprintf("v%d", n), files)
	}
	runtime.GC()
	debug.FreeOSMemory()
	baseline := procStatusKiB(b, "VmRSS")
	resetPeakRSS(b)
	b.ResetTimer()
	for n := range b.N {
		resp, err := http.Post(tm.URL+"/v1/channels/big/releases", "application/json", bytes.NewReader(bodies[n]))
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("publish of %d files: %s", files, resp.Status)
		}
	}
	b.StopTimer()
	peak := procStatusKiB(b, "VmHWM")
	size := len(bodies[0])
	b.ReportMetric(float64(size)/(1<<20), "body-MiB")
	b.ReportMetric(float64(baseline)/1024, "baseline-RSS-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(peak-baseline)*1024/float64(size), "RSS-growth/body-byte")
}

// millionFileBody is a publish request of n files in 1,000 directories.
func millionFileBody(b *testing.B, version string, n int) []byte {
	fs := make([]release.File, n)
	for i := range fs {
		fs[i] = release.File{Path: fmt.Sprintf("shard-%03d/part-%07d.bin", i%1000, i), Size: int64(1 + i%4096),
			ETag: fmt.Sprintf(`"%032x"`, i)}
	}
	body, err := json.Marshal(api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: "data", Source: "s3://bucket/data/" + version + "/", Manifest: release.Manifest{Files: fs}}}})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// procStatusKiB reads one "Name: N kB" line of /proc/self/status.
func procStatusKiB(b *testing.B, name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no /proc/self/status to measure RSS with: %v", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib
		}
	}
	b.Fatalf("/proc/self/status has no %s", name)
	return 0
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux 4.0+), so that
// building the body does not count in the peak.
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
}
