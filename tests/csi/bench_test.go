package csi_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkStagePublish1000Files measures, through the real plugin over
// its socket, NodeStageVolume + NodePublishVolume of a volume whose release
// (1,000 files) is already in the node's store — what a pod start costs
// once the data is on the node. Each sample is a new volume and pod; the
// teardown is not timed. Reported as p50/p99 milliseconds, twice: with the
// plugin's spare view trees (the default: a view takes a tree linked ahead
// by one rename, and the next spare is linked in the background), and
// without (--spare-view-trees=false: every view links its tree). The
// spare run also reports how many of its views took a spare:
//
//	go test -run '^$' -bench StagePublish -benchtime 1x ./tests/csi/   (make bench)
func BenchmarkStagePublish1000Files(b *testing.B) {
	w := newWorld(b)
	w.channel(b, "bench")
	files := map[string][]byte{}
	for i := range 1000 {
		files[fmt.Sprintf("shard-%02d/file-%04d", i%20, i)] = pattern(byte(i), 512)
	}
	w.publish(b, "bench", "v1", files)
	b.Run("spares", func(b *testing.B) { benchmarkStagePublish(b, w, true) })
	b.Run("linked", func(b *testing.B) { benchmarkStagePublish(b, w, false) })
}

func benchmarkStagePublish(b *testing.B, w *world, spares bool) {
	const samples = 100
	addr := freeAddr(b)
	p := startPlugin(b, w, pluginConfig{args: []string{"--health-address=" + addr, "--spare-view-trees=" + strconv.FormatBool(spares)}})
	// The first stage downloads the release; the measured ones find it.
	warm := p.createVolume(b, "warm", map[string]string{"channel": "bench"})
	p.stage(b, warm)
	var lat []time.Duration
	b.ResetTimer()
	for n := range b.N {
		for i := range samples {
			lat = append(lat, p.podStart(b, fmt.Sprintf("vol-%d-%d", n, i), "bench"))
			syncFS(b, p.root)
		}
	}
	b.StopTimer()
	b.ReportMetric(percentileMs(lat, 0.5), "p50-ms")
	b.ReportMetric(percentileMs(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "samples")
	if spares {
		b.ReportMetric(scrapeCounter(b, addr, `hydra_view_trees_total{source="spare"}`), "from-spare")
	}
	b.ReportMetric(0, "ns/op")
}

// syncFS commits the filesystem of dir: the teardown removed a view of
// 1,000 files, and the next sample's first fsync would otherwise pay for
// committing that.
func syncFS(t testing.TB, dir string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		t.Fatal(err)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrapeCounter reads one sample from the plugin's /metrics.
func scrapeCounter(t testing.TB, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s: no %s (%v)", addr, series, sc.Err())
	return 0
}
