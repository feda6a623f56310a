package csi_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/hydra-csi/hydra/pkg/release"
)

// BenchmarkWarmColdPodStart measures, through the real plugin over its
// socket, a pod's NodeStageVolume + NodePublishVolume of a 1 GiB release
// on a cold node (a fresh plugin and store: the stage downloads the
// release) and on a warm one (a plugin whose --node-labels match the
// channel's warm selector: it fetched the head before any volume
// existed). Reported as p50/p99 milliseconds of each; the cold side has
// few samples, each a whole download:
//
//	go test -run '^$' -bench WarmColdPodStart -benchtime 1x ./tests/csi/   (make bench)
func BenchmarkWarmColdPodStart(b *testing.B) {
	const (
		coldSamples = 5
		warmSamples = 100
		fileSize    = 128 << 20
	)
	w := newWorld(b)
	ctx := context.Background()
	files := map[string][]byte{}
	for i := range 8 { // 1 GiB
		files[fmt.Sprintf("shard-%d.bin", i)] = pattern(byte(i), fileSize)
	}
	w.channel(b, "cold")
	w.publish(b, "cold", "v1", files)
	if _, err := w.cl.CreateChannel(ctx, "warm", release.Config{
		Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "bench"}}}); err != nil {
		b.Fatal(err)
	}
	w.publish(b, "warm", "v1", files)

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		var cold []time.Duration
		for i := range coldSamples {
			p := startPlugin(b, w, pluginConfig{})
			cold = append(cold, p.podStart(b, fmt.Sprintf("cold-%d", i), "cold"))
			p.stop(b)
			if err := os.RemoveAll(p.root); err != nil {
				b.Fatal(err)
			}
		}

		p := startPlugin(b, w, pluginConfig{args: []string{"--node-labels=pool=bench"}})
		waitWarmHead(b, w, "warm")
		var warm []time.Duration
		for i := range warmSamples {
			warm = append(warm, p.podStart(b, fmt.Sprintf("warm-%d", i), "warm"))
			syncFS(b, p.root)
		}
		p.stop(b)
		b.ReportMetric(percentileMs(cold, 0.5), "cold-p50-ms")
		b.ReportMetric(percentileMs(cold, 0.99), "cold-p99-ms")
		b.ReportMetric(percentileMs(warm, 0.5), "warm-p50-ms")
		b.ReportMetric(percentileMs(warm, 0.99), "warm-p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// podStart is one pod's start on the plugin, timed: NodeStageVolume and
// NodePublishVolume of a new volume of channel; the teardown after it
// (unpublish, unstage) is not timed.
func (p *plugin) podStart(b *testing.B, name, channel string) time.Duration {
	b.Helper()
	vol := p.createVolume(b, name, map[string]string{"channel": channel})
	pd := p.pod(name + "-pod")
	start := time.Now()
	staging := p.stage(b, vol)
	p.publish(b, vol, staging, pd)
	took := time.Since(start)
	p.unpublish(b, vol.GetVolumeId(), pd)
	if _, err := p.node.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: staging}); err != nil {
		b.Fatal(err)
	}
	return took
}

// waitWarmHead waits until the manager reports node-a holding the warm
// channel's head.
func waitWarmHead(b *testing.B, w *world, channel string) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := w.cl.ChannelStatus(context.Background(), channel)
		if err == nil && len(st.Warm) == 1 && st.Warm[0].HeadReady {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("node-a does not hold the warm head of %s: %+v, %v", channel, st.Warm, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// percentileMs is the q-quantile of ds (nearest rank below), in ms.
func percentileMs(ds []time.Duration, q float64) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}
