//go:build e2e

package e2e_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
)

const (
	dataReady = "hydra.csi.dev/data-ready"
	// keepRunning is a container that runs until SIGTERM.
	keepRunning = "trap 'exit 0' TERM INT; while :; do sleep 1; done"
	versionFile = "/data/current/" + dataset + "/version.txt"
)

// createApp creates the namespace, a Service (so the pods have endpoints
// to be drained from), a PVC of hydra-nvme annotated with the channel, and
// a Deployment of 2 replicas with the readiness gate and a readiness probe
// that reads /data/current.
func (w *world) createApp() {
	t := w.t
	ctx := t.Context()
	cs := w.c.Client
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}}, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	mustCreate(t, func() error {
		_, err := cs.CoreV1().Services(appNS).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}, metav1.CreateOptions{})
		return err
	})
	mustCreate(t, func() error {
		_, err := cs.CoreV1().PersistentVolumeClaims(appNS).Create(ctx, pvc("web-data", "hydra-nvme"), metav1.CreateOptions{})
		return err
	})
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"hydra.csi.dev/reload": "none"}},
				Spec:       podSpec(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "web-data", ReadOnly: true}}, true),
			},
		},
	}
	mustCreate(t, func() error {
		_, err := cs.AppsV1().Deployments(appNS).Create(ctx, dep, metav1.CreateOptions{})
		return err
	})
}

// pvc is a claim of class on the channel, through the annotation that
// csi-provisioner's --extra-create-metadata hands the controller.
func pvc(name, class string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{"hydra.csi.dev/channel": channel}},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

// podSpec is a busybox container that reads its data volume at /data:
// with gated, the readiness gate and a probe that reads /data/current.
func podSpec(vol corev1.VolumeSource, gated bool) corev1.PodSpec {
	grace := int64(2)
	spec := corev1.PodSpec{
		TerminationGracePeriodSeconds: &grace,
		Containers: []corev1.Container{{
			Name: "app", Image: "localhost/busybox:e2e", ImagePullPolicy: corev1.PullNever,
			Command:      []string{"/bin/sh", "-c", keepRunning},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", versionFile}}},
				PeriodSeconds: 1, FailureThreshold: 1, SuccessThreshold: 1, TimeoutSeconds: 2,
			},
		}},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: vol}},
	}
	if gated {
		spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: dataReady}}
	}
	return spec
}

func mustCreate(t *testing.T, create func() error) {
	t.Helper()
	if err := create(); err != nil {
		t.Fatal(err)
	}
}

// waitAppReading waits until the app has 2 Ready pods that read version.
func (w *world) waitAppReading(version string, timeout time.Duration) []corev1.Pod {
	w.t.Helper()
	var pods []corev1.Pod
	w.c.WaitFor(timeout, "2 web pods Ready on "+version, func(context.Context) (bool, error) {
		pods = w.appPods(appNS, "app=web")
		if len(pods) != 2 {
			return false, nil
		}
		for i := range pods {
			if !podReady(&pods[i]) {
				return false, nil
			}
		}
		return true, nil
	})
	for _, p := range pods {
		if got := w.read(appNS, p.Name, versionFile); got != version+"\n" {
			w.t.Fatalf("pod %s reads %q at %s, want %q", p.Name, got, versionFile, version+"\n")
		}
	}
	return pods
}

// readyWatch follows the API server's watch stream of the app's pods and
// records, per pod, every change of Ready, and the most pods not Ready at
// any instant.
type readyWatch struct {
	mu          sync.Mutex
	ready       map[string]bool
	drains      map[string]int // times each pod went from Ready to not Ready
	maxNotReady int
	stop        func()
	done        chan struct{}
}

func (w *world) watchReady() *readyWatch {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rw := &readyWatch{ready: map[string]bool{}, drains: map[string]int{}, stop: cancel, done: make(chan struct{})}
	list, err := w.c.Client.CoreV1().Pods(appNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, p := range list.Items {
		rw.ready[p.Name] = podReady(&p)
	}
	wi, err := w.c.Client.CoreV1().Pods(appNS).Watch(ctx, metav1.ListOptions{LabelSelector: "app=web", ResourceVersion: list.ResourceVersion})
	if err != nil {
		w.t.Fatal(err)
	}
	go func() {
		defer close(rw.done)
		defer wi.Stop()
		for ev := range wi.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			rw.observe(p.Name, podReady(p))
		}
	}()
	return rw
}

func (rw *readyWatch) observe(pod string, ready bool) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if was, ok := rw.ready[pod]; ok && was && !ready {
		rw.drains[pod]++
	}
	rw.ready[pod] = ready
	n := 0
	for _, r := range rw.ready {
		if !r {
			n++
		}
	}
	rw.maxNotReady = max(rw.maxNotReady, n)
}

// end stops the watch and checks that every pod was drained (not Ready)
// at least once and never more than one at once.
func (rw *readyWatch) end(t *testing.T, pods []corev1.Pod) {
	t.Helper()
	rw.stop()
	<-rw.done
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.maxNotReady > 1 {
		t.Errorf("%d pods were not Ready at once; maxUnavailable is 1", rw.maxNotReady)
	}
	for _, p := range pods {
		if rw.drains[p.Name] == 0 {
			t.Errorf("pod %s was never drained (never not Ready) during the rollout", p.Name)
		}
	}
}

// checkNoRestarts fails when a container of pods restarted.
func (w *world) checkNoRestarts(pods []corev1.Pod) {
	w.t.Helper()
	for _, p := range pods {
		cur, err := w.c.Client.CoreV1().Pods(appNS).Get(w.t.Context(), p.Name, metav1.GetOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		if cur.UID != p.UID {
			w.t.Errorf("pod %s was replaced", p.Name)
		}
		if n := restarts(cur); n != 0 {
			w.t.Errorf("pod %s: %d container restarts", p.Name, n)
		}
	}
}

// rollTo waits for the app to move to version the careful way, started by
// move (a publish or a rollback).
func (w *world) rollTo(version string, move func()) {
	w.t.Helper()
	start := time.Now()
	pods := w.appPods(appNS, "app=web")
	rw := w.watchReady()
	move()
	after := w.waitOnEveryPod(version)
	rw.end(w.t, pods)
	w.checkNoRestarts(pods)
	if !slices.EqualFunc(pods, after, func(a, b corev1.Pod) bool { return a.UID == b.UID }) {
		w.t.Errorf("the app's pods changed during the rollout")
	}
	w.step("rollout to "+version+": one pod at a time, no restarts", start)
}

// waitOnEveryPod waits until hydra status shows both pods on version with
// no move left, both are Ready and read version.
func (w *world) waitOnEveryPod(version string) []corev1.Pod {
	w.t.Helper()
	w.c.WaitFor(rolloutTimeout, "hydra status: every pod on "+version, func(context.Context) (bool, error) {
		st := w.status()
		n := 0
		for _, p := range st.Pods {
			if p.PodNamespace != appNS || !strings.HasPrefix(p.PodName, "web-") {
				continue
			}
			if p.Current != version || p.Phase != "" {
				return false, nil
			}
			n++
		}
		return n == 2, nil
	})
	return w.waitAppReading(version, rolloutTimeout)
}
