package rollout_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Drain is long: in these tests a pod leaves service when the kubelet
// marks it not Ready, never because the drain time ran out.
var policy = release.RolloutPolicy{
	MaxUnavailable: 1,
	Drain:          release.Duration{Duration: 5 * time.Minute},
	ReloadTimeout:  release.Duration{Duration: 5 * time.Minute},
}

// deployment starts n gated pods of one Deployment "web", alternating
// between the nodes, and waits until all are Ready on v1.
func (c *cluster) deployment(n int, mod func(*podSpec)) []*corev1.Pod {
	c.t.Helper()
	var pods []*corev1.Pod
	nodes := []string{"node-a", "node-b"}
	for i := range n {
		s := podSpec{name: fmt.Sprintf("web-%d", i), node: nodes[i%len(nodes)], owner: "web-5d8f", hash: "5d8f", gated: true}
		if mod != nil {
			mod(&s)
		}
		pods = append(pods, c.startPod(s))
	}
	c.waitAllOn(time.Minute, "v1", pods...)
	c.let.resetMax()
	return pods
}

// checkMovedOnce checks that each pod was drained on v1 and made ready
// again on v2, once.
func (c *cluster) checkMovedOnce(pods ...*corev1.Pod) {
	c.t.Helper()
	for _, p := range pods {
		if got := c.let.timeline(p.Name); !slices.Equal(got, []string{"drained@v1", "ready@v2"}) {
			c.t.Errorf("%s: %q, want drained on v1 then ready on v2", p.Name, got)
		}
	}
}

// checkMaxUnready checks that the Deployment had, at its worst, exactly
// want pods not Ready at once since the rollout began.
func (c *cluster) checkMaxUnready(want int) {
	c.t.Helper()
	if got := c.let.maxUnready("web-5d8f"); got != want {
		c.t.Errorf("at most %d pods of the Deployment were not Ready at once, want exactly maxUnavailable %d", got, want)
	}
}

func (c *cluster) checkKubelet() {
	c.t.Helper()
	for _, err := range c.let.errors() {
		c.t.Error(err)
	}
}

// TestRolloutOneAtATime is scenario 1: three replicas on two nodes move to
// a new release one pod at a time, each drained before its flip and Ready
// again before the next one drains; a rollback moves them back the same way.
func TestRolloutOneAtATime(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	c.createChannel(policy)
	c.publish("v1")
	pods := c.deployment(3, nil)

	c.publish("v2")
	c.waitAllOn(2*time.Minute, "v2", pods...)
	c.checkMaxUnready(1)
	c.checkMovedOnce(pods...)

	// hydra rollback moves every pod back the same careful way.
	c.let.resetMax()
	if _, err := c.cl.Rollback(context.Background(), channel, ""); err != nil {
		t.Fatal(err)
	}
	c.waitAllOn(2*time.Minute, "v1", pods...)
	c.checkMaxUnready(1)
	for _, p := range pods {
		if got := c.let.timeline(p.Name); !slices.Equal(got, []string{"drained@v1", "ready@v2", "drained@v2", "ready@v1"}) {
			t.Errorf("%s: %q, want moved to v2 and back to v1, drained each time", p.Name, got)
		}
	}
	c.checkKubelet()
}

// TestRolloutRollsBackAPodThatNeverBecomesReady is scenario 2: the second
// pod's containers never become Ready on the new release; it is flipped
// back, its condition restored, the rollout paused with a reason and an
// Event; once the pod is fixed, resume completes the rollout.
func TestRolloutRollsBackAPodThatNeverBecomesReady(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	p := policy
	p.ReloadTimeout = release.Duration{Duration: 3 * time.Second}
	c.createChannel(p)
	c.publish("v1")
	pods := c.deployment(3, nil)
	c.let.setBroken("web-1", true)

	c.publish("v2")
	var ch release.Channel
	eventually(t, 2*time.Minute, "the rollout to pause", func() bool {
		ch = c.channel()
		return ch.Paused
	})
	if !strings.Contains(ch.PauseReason, "shop/web-1 rolled back to v1") {
		t.Errorf("pause reason %q does not name the pod and the rollback", ch.PauseReason)
	}
	c.waitAllOn(time.Minute, "v1", pods[1])
	if got := c.let.timeline("web-1"); !slices.Equal(got, []string{"drained@v1", "ready@v1"}) {
		t.Errorf("web-1: %q, want drained on v1, then ready again on v1 after the rollback", got)
	}
	// The others moved before web-1 failed (done, on v2) or were not
	// touched (the pause stops the rollout); which, depends on the order
	// the nodes staged v2 in.
	for _, p := range []*corev1.Pod{pods[0], pods[2]} {
		cur, tl := c.nodes[p.Spec.NodeName].current(p), c.let.timeline(p.Name)
		moved := cur == "v2" && slices.Equal(tl, []string{"drained@v1", "ready@v2"})
		untouched := cur == "v1" && len(tl) == 0
		if !moved && !untouched {
			t.Errorf("%s is on %q with %q, want moved to v2 or untouched on v1", p.Name, cur, tl)
		}
	}
	c.waitEvent("web-1", "RolledBack")

	c.let.setBroken("web-1", false)
	if _, err := c.cl.Resume(context.Background(), channel); err != nil {
		t.Fatal(err)
	}
	c.waitAllOn(2*time.Minute, "v2", pods...)
	c.checkMaxUnready(1)
	c.checkKubelet()
}

// TestRolloutDrainWaitsForEndpoints: a drained pod is flipped only once
// its EndpointSlice no longer lists it as ready (the EndpointSlice
// controller, played here, lags 300 ms behind readiness), or, for a pod
// whose endpoint never leaves, once the channel's drain time has passed.
func TestRolloutDrainWaitsForEndpoints(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	p := policy
	p.Drain = release.Duration{Duration: 3 * time.Second}
	c.createChannel(p)
	c.publish("v1")
	pods := c.deployment(3, nil)
	c.let.playEndpoints(t, 300*time.Millisecond, "web-2")
	c.publish("v2")
	c.waitAllOn(2*time.Minute, "v2", pods...)
	c.checkMovedOnce(pods...)
	for _, name := range []string{"web-0", "web-1"} {
		if got := c.let.flippedWhileServing(name); len(got) != 0 {
			t.Errorf("%s flipped to %q while its endpoint was still ready", name, got)
		}
	}
	// Only the drain time can have released web-2: its endpoint stayed.
	if got := c.let.flippedWhileServing("web-2"); !slices.Equal(got, []string{"v2"}) {
		t.Errorf("web-2 flips seen while listed ready: %q, want [v2] (released by the drain time)", got)
	}
	c.checkKubelet()
}

// TestRolloutMaxUnavailableTwo is scenario 3: with maxUnavailable 2, five
// replicas move two at a time, never more.
func TestRolloutMaxUnavailableTwo(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	p := policy
	p.MaxUnavailable = 2
	c.createChannel(p)
	c.publish("v1")
	pods := c.deployment(5, nil)
	c.publish("v2")
	c.waitAllOn(2*time.Minute, "v2", pods...)
	c.checkMaxUnready(2)
	c.checkMovedOnce(pods...)
	c.checkKubelet()
}

// TestRolloutHTTPReload is scenario 5: with reload http://:PORT/PATH each
// pod's endpoint receives exactly one POST per flip, naming the release.
func TestRolloutHTTPReload(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	var mu sync.Mutex
	posts := map[string][]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Channel, Release string }
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, "bad reload request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts[r.URL.Path] = append(posts[r.URL.Path], body.Channel+"@"+body.Release)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	c.createChannel(policy)
	c.publish("v1")
	pods := c.deployment(3, func(s *podSpec) { s.reload = fmt.Sprintf("http://:%d/reload/%s", port, s.name) })
	c.publish("v2")
	c.waitAllOn(2*time.Minute, "v2", pods...)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range pods {
		if got := posts["/reload/"+p.Name]; !slices.Equal(got, []string{channel + "@v2"}) {
			t.Errorf("%s received %q, want exactly one POST for %s@v2", p.Name, got, channel)
		}
	}
	c.checkKubelet()
}

// TestRolloutPinnedAndUngated is scenario 7: a volume pinned to a release
// is never touched; a pod without the readiness gate is flipped without
// drain and gets a warning Event.
func TestRolloutPinnedAndUngated(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	c.createChannel(policy)
	c.publish("v1")
	pods := c.deployment(3, func(s *podSpec) {
		switch s.name {
		case "web-0":
			s.pinned = "v1"
		case "web-1":
			s.gated = false
		}
	})
	c.publish("v2")
	c.waitAllOn(2*time.Minute, "v2", pods[1], pods[2])
	c.waitEvent("web-1", "NoReadinessGate")
	if got := c.let.timeline("web-1"); len(got) != 0 {
		t.Errorf("web-1 has no gate but was drained: %q", got)
	}
	// The pinned pod: still on v1, never drained, once no move is left.
	eventually(t, time.Minute, "no move in flight", func() bool { return c.movesInFlight() == 0 })
	if cur := c.nodes["node-a"].current(pods[0]); cur != "v1" || len(c.let.timeline("web-0")) != 0 {
		t.Errorf("pinned web-0 is on %q with %q, want v1 and never drained", cur, c.let.timeline("web-0"))
	}
	c.checkKubelet()
}

// TestRolloutManagerKilledMidRollout is scenario 4: the manager is killed
// with SIGKILL twice while pods are drained and started again on the same
// store; the rollout completes and never has more than maxUnavailable pods
// out at once, across the restarts.
func TestRolloutManagerKilledMidRollout(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	c.createChannel(policy)
	c.publish("v1")
	pods := c.deployment(4, nil)
	c.publish("v2")
	holders := []string{c.leaseHolder()}
	for drained := 1; drained <= 3; drained += 2 {
		eventually(t, time.Minute, fmt.Sprint(drained, " pods drained"), func() bool { return c.drainedCount(pods) >= drained })
		c.mgr.stop(syscall.SIGKILL)
		c.mgr.start()
		// The new process takes the controller's Lease once the dead
		// one's expires.
		eventually(t, time.Minute, "the restarted manager to hold the Lease", func() bool {
			h := c.leaseHolder()
			return h != "" && !slices.Contains(holders, h)
		})
		holders = append(holders, c.leaseHolder())
	}
	c.waitAllOn(2*time.Minute, "v2", pods...)
	c.checkMaxUnready(1)
	c.checkMovedOnce(pods...)
	c.checkKubelet()
}

// TestRolloutRestartHonoursPDB is scenario 6: with reload restart, the
// flipped pod is evicted; a PodDisruptionBudget that allows no disruption
// makes the rollout wait (the next pod is not drained) until it is removed.
// The test starts each evicted pod's replacement, as its ReplicaSet would.
func TestRolloutRestartHonoursPDB(t *testing.T) {
	c := newCluster(t, "node-a", "node-b")
	c.createChannel(policy)
	c.publish("v1")
	restart := func(s *podSpec) { s.reload = "restart" }
	pods := c.deployment(2, restart)
	ctx := context.Background()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr(intstr.FromInt32(2)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	if _, err := c.cs.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.publish("v2")
	// Whichever pod's node staged v2 first moves first.
	first := c.waitEvent("", "ReloadFailed")
	other := map[string]string{"web-0": "web-1", "web-1": "web-0"}[first]
	if p, err := c.cs.CoreV1().Pods(ns).Get(ctx, first, metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Fatalf("%s was evicted despite the budget: %v", first, err)
	}
	if got := c.let.timeline(other); len(got) != 0 {
		t.Fatalf("%s was drained while %s's eviction was blocked: %q", other, first, got)
	}
	// hydra status shows where the blocked pod stands.
	d, err := c.cl.GetChannel(ctx, channel)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Status.Pods, func(p api.PodView) bool { return p.PodName == first })
	if i < 0 || d.Status.Pods[i].Phase != release.PhaseReloading || d.Status.Pods[i].To != "v2" {
		t.Errorf("status of the pods: %+v, want %s reloading to v2", d.Status.Pods, first)
	}
	if err := c.cs.PolicyV1().PodDisruptionBudgets(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var replacements []*corev1.Pod
	for _, p := range pods {
		eventually(t, time.Minute, p.Name+" to be evicted and gone", func() bool {
			_, err := c.cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
		s := podSpec{name: p.Name + "-r", node: p.Spec.NodeName, owner: "web-5d8f", hash: "5d8f", gated: true, reload: "restart"}
		replacements = append(replacements, c.startPod(s))
	}
	c.waitAllOn(time.Minute, "v2", replacements...)
	c.checkKubelet()
}

// channel returns the channel as the manager has it.
func (c *cluster) channel() release.Channel {
	c.t.Helper()
	d, err := c.cl.GetChannel(context.Background(), channel)
	if err != nil {
		c.t.Fatal(err)
	}
	return d.Channel
}

// waitEvent waits for an Event with reason on the pod ("": any pod) and
// returns the pod's name.
func (c *cluster) waitEvent(pod, reason string) string {
	c.t.Helper()
	var found string
	eventually(c.t, time.Minute, "a "+reason+" Event on pod "+pod, func() bool {
		evs, err := c.cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if (pod == "" || e.InvolvedObject.Name == pod) && e.Reason == reason {
				found = e.InvolvedObject.Name
				return true
			}
		}
		return false
	})
	return found
}

// movesInFlight counts the pods the controller is moving, from its
// metrics endpoint.
func (c *cluster) movesInFlight() int {
	c.t.Helper()
	resp, err := http.Get(c.mgr.url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "hydra_manager_rollout_pods{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// leaseHolder is the identity holding the rollout controller's Lease.
func (c *cluster) leaseHolder() string {
	l, err := c.cs.CoordinationV1().Leases(ns).Get(context.Background(), "hydra-manager", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// drainedCount is how many of the pods have been drained so far.
func (c *cluster) drainedCount(pods []*corev1.Pod) int {
	n := 0
	for _, p := range pods {
		if len(c.let.timeline(p.Name)) > 0 {
			n++
		}
	}
	return n
}
