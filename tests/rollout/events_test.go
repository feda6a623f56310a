package rollout_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hydra-csi/hydra/internal/metricsdoc"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestDownloadFailureEvents is the Events scenario. The node plugin has no
// Kubernetes API access; the manager tells what nodes report:
//   - a release whose object was overwritten in S3 after publish fails on
//     both nodes: a DownloadFailed Warning on every pod with a view of the
//     channel on each node and on the PVC behind it, once, however often
//     the node retries;
//   - a release larger than the nodes' disks: InsufficientSpace the same way;
//   - a pod rolled back after its flip: RolledBack on its PVC too.
func TestDownloadFailureEvents(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	p := policy
	p.ReloadTimeout = release.Duration{Duration: 3 * time.Second}
	c.createChannel(p)
	c.publish("v1")
	withClaim := func(s *podSpec) {
		if s.name != "web-2" { // web-2's volume is inline: no PVC
			s.claim = "data-" + s.name
		}
	}
	c.deployment(3, withClaim) // web-0 and web-2 on node-a, web-1 on node-b

	// v2's shard-1 is overwritten after its manifest was listed.
	c.publishWith("v2", func(prefix string, _ *release.Manifest) {
		c.minio.Put(t, "data", prefix+"shard-1.bin", []byte("not what was published"))
	})
	for _, o := range []struct{ kind, name, node string }{
		{"Pod", "web-0", "node-a"}, {"PersistentVolumeClaim", "data-web-0", "node-a"}, {"Pod", "web-2", "node-a"},
		{"Pod", "web-1", "node-b"}, {"PersistentVolumeClaim", "data-web-1", "node-b"},
	} {
		e := c.waitWarning(o.kind, o.name, "DownloadFailed")
		if want := "catalog: node " + o.node + " cannot download v2: "; !strings.HasPrefix(e.Message, want) || !strings.Contains(e.Message, "object changed since publish") {
			t.Errorf("%s %s: DownloadFailed message %q, want %q… naming the changed object", o.kind, o.name, e.Message, want)
		}
	}
	if evs := c.events("PersistentVolumeClaim", "data-web-2", ""); len(evs) != 0 {
		t.Errorf("Events on a PVC web-2 does not use: %v", evs)
	}
	c.checkToldOnce("node-a", "v2", "DownloadFailed", "web-0", "data-web-0")

	// v3 claims the largest size a file may have (5 TiB) per file: no
	// node has room for it.
	c.publishWith("v3", func(_ string, man *release.Manifest) {
		for i := range man.Files {
			man.Files[i].Size = release.MaxFileSize
		}
	})
	for _, o := range []struct{ kind, name string }{
		{"Pod", "web-0"}, {"PersistentVolumeClaim", "data-web-0"}, {"Pod", "web-1"}, {"PersistentVolumeClaim", "data-web-1"},
	} {
		if e := c.waitWarning(o.kind, o.name, "InsufficientSpace"); !strings.Contains(e.Message, "has no room for v3: ") ||
			!strings.Contains(e.Message, "not enough space for the release") {
			t.Errorf("%s %s: InsufficientSpace message %q", o.kind, o.name, e.Message)
		}
	}

	// v4 is fine, but web-0 never becomes Ready on it: rolled back, and the
	// PVC says so too.
	c.let.setBroken("web-0", true)
	c.publish("v4")
	c.waitWarning("Pod", "web-0", "RolledBack")
	if e := c.waitWarning("PersistentVolumeClaim", "data-web-0", "RolledBack"); !strings.Contains(e.Message, "shop/web-0 rolled back to v1") {
		t.Errorf("RolledBack on the PVC: %q", e.Message)
	}

	c.checkManagerMetrics(map[string]float64{
		`hydra_manager_events_total{reason="DownloadFailed"}`:    5,
		`hydra_manager_events_total{reason="InsufficientSpace"}`: 4 + 1, // web-2's pod too
		`hydra_manager_events_total{reason="RolledBack"}`:        2,
	})
}

// events lists the Events on the object of kind and name in the test
// namespace, with reason unless it is "".
func (c *cluster) events(kind, name, reason string) []corev1.Event {
	c.t.Helper()
	sel := "involvedObject.kind=" + kind + ",involvedObject.name=" + name
	if reason != "" {
		sel += ",reason=" + reason
	}
	evs, err := c.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		c.t.Fatal(err)
	}
	return evs.Items
}

// waitWarning waits for a Warning Event with reason on the object, from
// hydra-manager, and returns it.
func (c *cluster) waitWarning(kind, name, reason string) corev1.Event {
	c.t.Helper()
	var found corev1.Event
	eventually(c.t, 2*time.Minute, fmt.Sprintf("a %s Event on %s %s", reason, kind, name), func() bool {
		for _, e := range c.events(kind, name, reason) {
			if e.Type == corev1.EventTypeWarning && e.Source.Component == "hydra-manager" {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// checkToldOnce lets node retry version and fail again, waits until the
// manager has stored that failure and decided twice since, and checks that
// each object still has one Event of reason, recorded once.
func (c *cluster) checkToldOnce(node, version, reason string, pod, claim string) {
	c.t.Helper()
	first := c.failedAt(node, version)
	eventually(c.t, 3*time.Minute, node+" to retry "+version+" and fail again", func() bool {
		return c.failedAt(node, version).After(first)
	})
	passes := c.managerMetric("hydra_manager_rollout_passes_total")
	eventually(c.t, time.Minute, "two more rollout passes", func() bool {
		return c.managerMetric("hydra_manager_rollout_passes_total") >= passes+2
	})
	for _, o := range [][2]string{{"Pod", pod}, {"PersistentVolumeClaim", claim}} {
		evs := c.events(o[0], o[1], reason)
		if len(evs) != 1 || evs[0].Count != 1 {
			c.t.Errorf("%s %s: %d %s Events (counts %v) after a retry failed the same way, want one, recorded once",
				o[0], o[1], len(evs), reason, counts(evs))
		}
	}
}

func counts(evs []corev1.Event) []int32 {
	var out []int32
	for _, e := range evs {
		out = append(out, e.Count)
	}
	return out
}

// failedAt is when node last reported version failed, per the manager;
// zero when it does not report it failed.
func (c *cluster) failedAt(node, version string) time.Time {
	c.t.Helper()
	st, err := c.cl.ChannelStatus(context.Background(), channel)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, n := range st.Nodes {
		for _, p := range n.Releases {
			if n.Node == node && p.Version == version && p.State == release.StateFailed {
				return p.UpdatedAt
			}
		}
	}
	return time.Time{}
}

// scrape returns the manager binary's /metrics.
func (c *cluster) scrape() string {
	c.t.Helper()
	resp, err := http.Get(c.mgr.url + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(raw)
}

// managerMetric is the value of one series on the manager's /metrics, -1
// when it is not there.
func (c *cluster) managerMetric(series string) float64 {
	c.t.Helper()
	for _, line := range strings.Split(c.scrape(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				c.t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// checkManagerMetrics checks the real binary's /metrics: every family it
// serves is in docs/metrics.md with its type, and each series in want has
// at least its value.
func (c *cluster) checkManagerMetrics(want map[string]float64) {
	c.t.Helper()
	doc, err := metricsdoc.ReadDoc("../../docs/metrics.md")
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(c.scrape(), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" || metricsdoc.Runtime(f[2]) {
			continue
		}
		if r, ok := doc.Rows[f[2]]; !ok || r.Type != f[3] {
			c.t.Errorf("hydra-manager serves %s (%s), which docs/metrics.md does not list as such", f[2], f[3])
		}
	}
	for series, min := range want {
		if got := c.managerMetric(series); got < min {
			c.t.Errorf("%s = %v, want at least %v", series, got, min)
		}
	}
}
