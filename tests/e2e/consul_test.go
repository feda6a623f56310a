//go:build e2e

package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestEndToEndConsul runs the manager as deploy/kubernetes/overlays/consul
// ships it — three replicas on a Consul store, the controller elected
// through Consul's lock — and kills the leader while the rollout to v2 has
// a pod drained (SIGKILL from the host: the lock is not released, its
// session must expire): the rollout still completes one pod at a time.
func TestEndToEndConsul(t *testing.T) {
	w := newWorld(t)
	consul := testenv.StartConsulOn(t, testenv.ClusterAddr)
	// The overlay's consul-address names the operator's Consul, and its
	// required anti-affinity puts each replica on its own node: this
	// cluster has one node, so the test drops the rule.
	w.deploy("overlays/consul", fmt.Sprintf(`- target: {kind: ConfigMap, name: hydra-config}
  patch: |-
    - {op: replace, path: /data/consul-address, value: %q}
- target: {kind: Deployment, name: hydra-manager}
  patch: |-
    - {op: remove, path: /spec/template/spec/affinity}
`, consul.Addr))
	w.waitManagers(3)

	start := time.Now()
	w.hydra("channel", "create", channel, "--drain", "20s", "--reload-timeout", "2m")
	w.publish("v1")
	w.createApp()
	w.waitAppReading("v1", upTimeout)
	w.step("v1: 2 pods Ready reading v1 (manager on Consul)", start)

	var killed string
	w.rollTo("v2", func() {
		w.publish("v2")
		w.c.WaitFor(time.Minute, "a web pod drained by the rollout", func(context.Context) (bool, error) {
			for _, p := range w.appPods(appNS, "app=web") {
				if !podReady(&p) {
					return true, nil
				}
			}
			return false, nil
		})
		killed = w.managerLeader()
		w.killContainer(hydraNS, killed)
		t.Logf("killed the leader %s with a pod drained", killed)
	})
	// Pod B moved after the kill, so another replica took the lock; and
	// one leads now.
	t.Logf("leader after the rollout: %s", w.managerLeader())
}

// killContainer SIGKILLs the main process of a pod's first container from
// the host, as a crash or the OOM killer would: no graceful release of the
// leader lock, whose session must expire instead.
func (w *world) killContainer(ns, pod string) {
	w.t.Helper()
	p, err := w.c.Client.CoreV1().Pods(ns).Get(w.t.Context(), pod, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if len(p.Status.ContainerStatuses) == 0 {
		w.t.Fatalf("pod %s has no container status", pod)
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, err := exec.Command("ctr", "-a", w.c.ContainerdSock, "-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput()
	if err != nil {
		w.t.Fatalf("ctr tasks kill %s: %v\n%s", id, err, out)
	}
}

// waitManagers waits until n manager replicas are Ready.
func (w *world) waitManagers(n int) {
	w.c.WaitFor(upTimeout, fmt.Sprintf("%d manager replicas Ready", n), func(context.Context) (bool, error) {
		ready := 0
		for _, p := range w.appPods(hydraNS, "app.kubernetes.io/component=manager") {
			if podReady(&p) {
				ready++
			}
		}
		return ready == n, nil
	})
}

// managerLeader is the manager replica whose hydra_manager_leader is 1,
// read from each replica's /metrics on its pod IP.
func (w *world) managerLeader() string {
	w.t.Helper()
	var leader string
	w.c.WaitFor(time.Minute, "one manager replica leading", func(ctx context.Context) (bool, error) {
		var leaders []string
		for _, p := range w.appPods(hydraNS, "app.kubernetes.io/component=manager") {
			if p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning && leads(ctx, p.Status.PodIP) {
				leaders = append(leaders, p.Name)
			}
		}
		if len(leaders) == 1 {
			leader = leaders[0]
		}
		return len(leaders) == 1, nil
	})
	return leader
}

func leads(ctx context.Context, ip string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ip+":8080/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return err == nil && strings.Contains(string(body), "\nhydra_manager_leader 1\n")
}
