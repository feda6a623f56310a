package manager_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
)

// warmOf is the channel of a node's answer and whether it is there.
func warmOf(d release.Desired, channel string) (release.DesiredChannel, bool) {
	for _, ch := range d.Channels {
		if ch.Name == channel {
			return ch, true
		}
	}
	return release.DesiredChannel{}, false
}

// isWarm is a poll condition: channel is in the answer, warm on medium
// with head as its head; medium "" asks for it to be absent.
func isWarm(channel, head, medium string) func(release.Desired) bool {
	return func(d release.Desired) bool {
		ch, ok := warmOf(d, channel)
		if medium == "" {
			return d.Index != 0 && !ok
		}
		return ok && ch.Warm == medium && ch.Head == head
	}
}

func reportLabels(t *testing.T, m *manager.Manager, node string, labels map[string]string, rels ...release.Progress) {
	t.Helper()
	if err := m.ReportStatus(context.Background(), node, release.NodeStatus{Labels: labels, Releases: rels}); err != nil {
		t.Fatal(err)
	}
}

// TestWarmByReportedLabels: without Kubernetes, a channel's warm selector
// matches the labels nodes report. A matching node is told of the channel
// with no view and no release of it, marked warm with the medium; a publish
// moves its head; a relabelled node is no longer told of it; a node that
// holds a release of the channel but does not match is told of it, not
// warm. Every channel carries its node quota.
func TestWarmByReportedLabels(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "w", release.Config{NodeQuota: 4096,
		Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}, Medium: release.MediumMemory}})
	mustCreate(t, m, "cold", release.Config{})
	mustPublish(t, m, "w", "v1", true)
	mustPublish(t, m, "cold", "v1", true)
	reportLabels(t, m, "search-1", map[string]string{"pool": "search", "zone": "a"})
	reportLabels(t, m, "batch-1", map[string]string{"pool": "batch"},
		release.Progress{Channel: "w", Version: "v1", State: release.StateReady, BytesDone: 1, BytesTotal: 1})
	reportLabels(t, m, "bare-1", nil)

	d := pollUntil(t, m, "search-1", isWarm("w", "v1", release.MediumMemory))
	if ch, _ := warmOf(d, "w"); ch.NodeQuota != 4096 {
		t.Errorf("search-1 told of w with node quota %d, want 4096", ch.NodeQuota)
	}
	if _, ok := warmOf(d, "cold"); ok {
		t.Errorf("search-1 told of cold, which it neither holds nor is warm for: %+v", d.Channels)
	}
	for _, node := range []string{"batch-1", "bare-1"} {
		d := pollUntil(t, m, node, func(d release.Desired) bool { return d.Index != 0 })
		if ch, ok := warmOf(d, "w"); ok && ch.Warm != "" {
			t.Errorf("%s (not matching) told of w warm on %q", node, ch.Warm)
		}
	}
	if _, ok := warmOf(pollUntil(t, m, "batch-1", func(d release.Desired) bool { return d.Index != 0 }), "w"); !ok {
		t.Error("batch-1, which holds w/v1, is not told of w")
	}

	mustPublish(t, m, "w", "v2", true)
	pollUntil(t, m, "search-1", isWarm("w", "v2", release.MediumMemory))
	reportLabels(t, m, "search-1", map[string]string{"pool": "search"},
		release.Progress{Channel: "w", Version: "v2", State: release.StateReady, BytesDone: 1, BytesTotal: 1})
	st, err := m.ChannelStatus(ctx, "w")
	if err != nil {
		t.Fatal(err)
	}
	if want := []api.WarmNode{{Node: "search-1", Medium: release.MediumMemory, HeadReady: true}}; len(st.Warm) != 1 || st.Warm[0] != want[0] {
		t.Errorf("status of w lists warm nodes %+v, want %+v", st.Warm, want)
	}

	// Relabelled: told of w only as a holder of w/v2, no longer warm.
	before := pollUntil(t, m, "search-1", func(d release.Desired) bool { return d.Index != 0 })
	reportLabels(t, m, "search-1", map[string]string{"pool": "batch"},
		release.Progress{Channel: "w", Version: "v2", State: release.StateReady, BytesDone: 1, BytesTotal: 1})
	after := pollUntil(t, m, "search-1", func(d release.Desired) bool { ch, ok := warmOf(d, "w"); return ok && ch.Warm == "" })
	if after.Index == before.Index {
		t.Errorf("search-1's answer changed at the same index %d", after.Index)
	}
	reportLabels(t, m, "search-1", map[string]string{"pool": "batch"})
	pollUntil(t, m, "search-1", isWarm("w", "", ""))
}

// TestWarmByKubeLabels: with Kubernetes, a Node's labels select warm
// nodes, whatever the node reports; relabelling a Node starts and stops
// warming with no report; a node the API server does not know is selected
// by the labels it reports.
func TestWarmByKubeLabels(t *testing.T) {
	cs := startKube(t)
	ctx := context.Background()
	for name, pool := range map[string]string{"kube-1": "search", "kube-2": "batch"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"pool": pool}}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	m := managertest.Start(t, managertest.Options{Kube: cs}).Manager
	mustCreate(t, m, "w", release.Config{Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}}})
	mustPublish(t, m, "w", "v1", true)
	// The reported labels say the opposite of the Nodes', but for not-kube.
	reportLabels(t, m, "kube-1", map[string]string{"pool": "batch"})
	reportLabels(t, m, "kube-2", map[string]string{"pool": "search"})
	reportLabels(t, m, "not-kube", map[string]string{"pool": "search"})

	pollUntil(t, m, "kube-1", isWarm("w", "v1", release.MediumDisk))
	pollUntil(t, m, "not-kube", isWarm("w", "v1", release.MediumDisk))
	pollUntil(t, m, "kube-2", isWarm("w", "", ""))

	relabel := func(name, pool string) {
		t.Helper()
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n.Labels["pool"] = pool
		if _, err := cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	relabel("kube-1", "batch")
	relabel("kube-2", "search")
	pollUntil(t, m, "kube-1", isWarm("w", "", ""))
	pollUntil(t, m, "kube-2", isWarm("w", "v1", release.MediumDisk))
	mustPublish(t, m, "w", "v2", true)
	pollUntil(t, m, "kube-2", isWarm("w", "v2", release.MediumDisk))
}

// TestWarmGauge: hydra_manager_warm_nodes counts the pairs of a warm
// channel and a node it matches, by whether the node has the head.
func TestWarmGauge(t *testing.T) {
	tm := managertest.Start(t, managertest.Options{})
	m := tm.Manager
	for _, name := range []string{"a", "b"} {
		mustCreate(t, m, name, release.Config{Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}}})
		mustPublish(t, m, name, "v2", true)
	}
	ready := func(ch, v string) release.Progress {
		return release.Progress{Channel: ch, Version: v, State: release.StateReady, BytesDone: 1, BytesTotal: 1}
	}
	search := map[string]string{"pool": "search"}
	reportLabels(t, m, "node-1", search, ready("a", "v2"), ready("b", "v1")) // b/v1 is not the head
	reportLabels(t, m, "node-2", search, ready("a", "v2"), ready("b", "v2"))
	reportLabels(t, m, "node-3", map[string]string{"pool": "batch"}, ready("a", "v2"))
	want := map[string]float64{`hydra_manager_warm_nodes{head="ready"}`: 3, `hydra_manager_warm_nodes{head="missing"}`: 1}
	deadline := time.Now().Add(30 * time.Second)
	for name, v := range want {
		for got := gauge(t, tm.URL, name); got != v; got = gauge(t, tm.URL, name) {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v", name, got, v)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
