package csi_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// BenchmarkStagePublish1000Files measures, through the real plugin over
// its socket, NodeStageVolume + NodePublishVolume of a volume whose release
// (1,000 files) is already in the node's store — what a pod start costs
// once the data is on the node. Each sample is a new volume and pod; the
// teardown is not timed. Reported as p50/p99 milliseconds:
//
//	go test -run '^$' -bench StagePublish -benchtime 1x ./tests/csi/   (make bench)
func BenchmarkStagePublish1000Files(b *testing.B) {
	const samples = 100
	w := newWorld(b)
	w.channel(b, "bench")
	files := map[string][]byte{}
	for i := range 1000 {
		files[fmt.Sprintf("shard-%02d/file-%04d", i%20, i)] = pattern(byte(i), 512)
	}
	w.publish(b, "bench", "v1", files)
	p := startPlugin(b, w, pluginConfig{})
	// The first stage downloads the release; the measured ones find it.
	warm := p.createVolume(b, "warm", map[string]string{"channel": "bench"})
	p.stage(b, warm)
	var lat []time.Duration
	b.ResetTimer()
	for n := range b.N {
		for i := range samples {
			vol := p.createVolume(b, fmt.Sprintf("vol-%d-%d", n, i), map[string]string{"channel": "bench"})
			pd := p.pod(fmt.Sprintf("pod-%d-%d", n, i))
			start := time.Now()
			staging := p.stage(b, vol)
			p.publish(b, vol, staging, pd)
			lat = append(lat, time.Since(start))
			b.StopTimer()
			p.unpublish(b, vol.GetVolumeId(), pd)
			if _, err := p.node.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: staging}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "samples")
	b.ReportMetric(0, "ns/op")
}
