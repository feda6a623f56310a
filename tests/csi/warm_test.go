package csi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestWarmNodeStagesWithoutDownload: a plugin started with --node-labels
// that match a channel's warm selector fetches the channel's head with no
// volume, and the next head as soon as it is published; a new pod's
// NodeStageVolume and NodePublishVolume afterwards read nothing from the
// origin.
func TestWarmNodeStagesWithoutDownload(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.cl.CreateChannel(ctx, "warm", release.Config{
		Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}}}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "warm", "v1", map[string][]byte{"a.bin": pattern(1, 1<<20)})
	proxy := testenv.StartFaultProxy(t, w.minio.Endpoint)
	p := startPlugin(t, w, pluginConfig{s3Endpoint: proxy.URL, args: []string{"--node-labels=pool=search,zone=a"}})

	headReady := func(v string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st, err := w.cl.ChannelStatus(ctx, "warm")
			if err == nil && len(st.Warm) == 1 && st.Warm[0].Node == "node-a" && st.Warm[0].HeadReady {
				if d, err := w.cl.GetChannel(ctx, "warm"); err == nil && d.Channel.Head == v {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node-a does not report the warm head %s ready: status %+v, %v", v, st.Warm, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	headReady("v1")
	v2 := map[string][]byte{"a.bin": pattern(2, 1<<20), "b.bin": []byte("two")}
	w.publish(t, "warm", "v2", v2)
	headReady("v2")

	before := proxy.BytesServed()
	if before == 0 {
		t.Fatal("the warm heads came with no byte through the proxy: the plugin does not read the origin through it")
	}
	vol := p.createVolume(t, "pvc-warm", map[string]string{"channel": "warm"})
	staging := p.stage(t, vol)
	pd := p.pod("warm-0")
	p.publish(t, vol, staging, pd)
	for name, body := range v2 {
		wantFile(t, filepath.Join(pd.target, "current", dataset, name), body)
	}
	if got := proxy.BytesServed() - before; got != 0 {
		t.Errorf("NodeStageVolume and NodePublishVolume on a warm node read %d bytes from the origin, want 0", got)
	}
}
