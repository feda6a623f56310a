package rollout_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/hydra-csi/hydra/internal/testenv"
)

const dataReady corev1.PodConditionType = "hydra.csi.dev/data-ready"

// kubelet plays the kubelet's part for the pods the test started: it
// computes each pod's Ready from its containers and readiness gates, as
// the real one does, and writes it to the pod's status; it deletes pods
// that are being deleted (after an eviction). It follows the API server's
// watch stream in order, and records for each pod the releases its view
// showed when it was drained and when it was made ready again, and per
// group the most pods not Ready at once.
type kubelet struct {
	c *cluster

	mu          sync.Mutex
	pods        map[string]*podTrack // by name
	maxNotReady map[string]int       // by group
	broken      map[string]bool
	errs        []error
	// endpoints: the EndpointSlice controller is played too (see
	// playEndpoints); stuck pods never leave their slice.
	endpoints bool
	stuck     map[string]bool
}

type podTrack struct {
	pod   *corev1.Pod
	node  *node
	group string
	// dataReady is the last data-ready status seen; ready and
	// containersReady what this kubelet wrote.
	dataReady              corev1.ConditionStatus
	ready, containersReady bool
	// timeline is "drained@<release>" and "ready@<release>" entries: the
	// view's release when the condition turned False, and True again.
	timeline []string
	// failing: a broken pod drained at failFrom; it recovers once its view
	// has left failFrom and come back (a rollback).
	failing  bool
	failFrom string
	leftFrom bool
	gone     bool
	// lastView is the view's release the poller saw last;
	// unreadySincePoll is whether the pod was not Ready at any time since.
	lastView         string
	unreadySincePoll bool
	// serving is what the EndpointSlice (when played) says of the pod;
	// unservedSincePoll whether it said not serving at any time since the
	// last poll; flippedServing records flips seen while it said serving.
	serving           bool
	unservedSincePoll bool
	flippedServing    []string
}

func startKubelet(t interface {
	Cleanup(func())
	Fatal(...any)
}, c *cluster) *kubelet {
	k := &kubelet{c: c, pods: map[string]*podTrack{}, maxNotReady: map[string]int{}, broken: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(c.cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { k.observe(obj.(*corev1.Pod)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	done := make(chan struct{})
	go func() { defer close(done); k.watchViews(stop) }()
	t.Cleanup(func() { close(stop); factory.Shutdown(); <-done })
	return k
}

// run starts tracking a pod the test created and marks its containers
// Ready, as the kubelet does once they pass their probes.
func (k *kubelet) run(pod *corev1.Pod, n *node) {
	k.mu.Lock()
	tr := &podTrack{pod: pod, node: n, group: groupOf(pod), containersReady: true}
	k.pods[pod.Name] = tr
	k.mu.Unlock()
	k.observe(pod)
}

func groupOf(pod *corev1.Pod) string {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return ref.Name
	}
	return pod.Name
}

// observe handles one pod update from the watch stream.
func (k *kubelet) observe(pod *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	tr := k.pods[pod.Name]
	if tr == nil || tr.pod.UID != pod.UID || tr.gone {
		return
	}
	tr.pod = pod
	if pod.DeletionTimestamp != nil {
		tr.gone = true
		zero := int64(0)
		err := k.c.cs.CoreV1().Pods(ns).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err != nil && !apierrors.IsNotFound(err) {
			k.errs = append(k.errs, err)
		}
		// The CSI plugin's NodeUnpublishVolume removes the pod's view.
		if err := tr.node.views.Remove(volumeOf(pod), string(pod.UID)); err != nil {
			k.errs = append(k.errs, err)
		}
		tr.node.agent.Poke()
		k.count()
		return
	}
	dr := corev1.ConditionUnknown
	for _, c := range pod.Status.Conditions {
		if c.Type == dataReady {
			dr = c.Status
		}
	}
	if dr != tr.dataReady {
		view := tr.node.current(pod)
		switch {
		case dr == corev1.ConditionFalse:
			tr.timeline = append(tr.timeline, "drained@"+view)
			if k.broken[pod.Name] {
				tr.containersReady, tr.failing, tr.failFrom, tr.leftFrom = false, true, view, false
			}
		case dr == corev1.ConditionTrue && tr.dataReady == corev1.ConditionFalse:
			tr.timeline = append(tr.timeline, "ready@"+view)
		}
		tr.dataReady = dr
	}
	k.sync(tr)
}

// sync writes the pod's Ready and ContainersReady when they differ from
// what the kubelet computes; the caller holds k.mu.
func (k *kubelet) sync(tr *podTrack) {
	pod := tr.pod
	gated := len(pod.Spec.ReadinessGates) > 0
	ready := tr.containersReady && (!gated || tr.dataReady == corev1.ConditionTrue)
	if ready == tr.ready && podCondition(pod, corev1.PodReady) == ready && podCondition(pod, corev1.ContainersReady) == tr.containersReady && pod.Status.PodIP != "" {
		return
	}
	tr.ready = ready
	tr.unreadySincePoll = tr.unreadySincePoll || !ready
	k.count()
	for attempt := 0; ; attempt++ {
		st := pod.Status.DeepCopy()
		st.Phase, st.PodIP, st.PodIPs = corev1.PodRunning, "127.0.0.1", []corev1.PodIP{{IP: "127.0.0.1"}}
		testenv.SetPodCondition(st, corev1.ContainersReady, tr.containersReady)
		testenv.SetPodCondition(st, corev1.PodReady, ready)
		next := pod.DeepCopy()
		next.Status = *st
		updated, err := k.c.cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), next, metav1.UpdateOptions{})
		if err == nil {
			tr.pod = updated
			return
		}
		if !apierrors.IsConflict(err) || attempt == 10 {
			if !apierrors.IsNotFound(err) {
				k.errs = append(k.errs, fmt.Errorf("kubelet: status of %s: %w", pod.Name, err))
			}
			return
		}
		if pod, err = k.c.cs.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{}); err != nil {
			return
		}
	}
}

// count updates the most pods not Ready per group; the caller holds k.mu.
func (k *kubelet) count() {
	notReady := map[string]int{}
	for _, tr := range k.pods {
		if !tr.gone && !tr.ready {
			notReady[tr.group]++
		}
	}
	for g, n := range notReady {
		k.maxNotReady[g] = max(k.maxNotReady[g], n)
	}
}

// watchViews polls the pods' views every 10 ms: a gated pod's view that
// flips while the pod is Ready is an error (it was not drained), and a
// broken pod recovers once its view was rolled back.
func (k *kubelet) watchViews(stop <-chan struct{}) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		k.mu.Lock()
		for _, tr := range k.pods {
			if tr.gone {
				continue
			}
			// A flip seen by this poll happened since the last one; unless
			// the pod was not Ready at some point in between, it was not
			// drained. (A pod drained, flipped and made Ready again between
			// two polls is not flagged: the timeline checks cover it.)
			view := tr.node.current(tr.pod)
			if view != tr.lastView {
				if tr.lastView != "" && !tr.unreadySincePoll && len(tr.pod.Spec.ReadinessGates) > 0 {
					k.errs = append(k.errs, fmt.Errorf("%s: view flipped %s -> %s while the pod was Ready (not drained)", tr.pod.Name, tr.lastView, view))
				}
				if tr.lastView != "" && k.endpoints && !tr.unservedSincePoll {
					tr.flippedServing = append(tr.flippedServing, view)
				}
				tr.lastView = view
			}
			tr.unreadySincePoll = !tr.ready
			tr.unservedSincePoll = !tr.serving
			if !tr.failing {
				continue
			}
			switch {
			case view != tr.failFrom:
				tr.leftFrom = true
			case tr.leftFrom:
				tr.failing, tr.containersReady = false, true
				k.sync(tr)
			}
		}
		k.mu.Unlock()
	}
}

func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// ready reports what the kubelet last wrote as the pod's Ready.
func (k *kubelet) ready(name string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	tr := k.pods[name]
	return tr != nil && !tr.gone && tr.ready
}

func (k *kubelet) timeline(name string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.pods[name].timeline...)
}

// resetMax starts counting not-Ready pods from now (after setup).
func (k *kubelet) resetMax() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.maxNotReady = map[string]int{}
	k.count()
}

func (k *kubelet) maxUnready(group string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maxNotReady[group]
}

func (k *kubelet) setBroken(name string, broken bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.broken[name] = broken
}

func (k *kubelet) errors() []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]error(nil), k.errs...)
}

// playEndpoints plays the EndpointSlice controller of a Service over the
// tracked pods: every lag it writes one slice listing each pod as ready or
// not per the Ready the kubelet wrote — except stuck pods, listed ready
// whatever happens, which only the channel's drain time can release.
func (k *kubelet) playEndpoints(t *testing.T, lag time.Duration, stuck ...string) {
	k.mu.Lock()
	k.endpoints, k.stuck = true, map[string]bool{}
	for _, name := range stuck {
		k.stuck[name] = true
	}
	k.mu.Unlock()
	slices := k.c.cs.DiscoveryV1().EndpointSlices(ns)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-x7k2p", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	write := func() error {
		k.mu.Lock()
		slice.Endpoints = nil
		names := make([]string, 0, len(k.pods))
		for name := range k.pods {
			names = append(names, name)
		}
		sort.Strings(names)
		for i, name := range names {
			tr := k.pods[name]
			if tr.gone {
				continue
			}
			serving := tr.ready || k.stuck[name]
			tr.serving = serving
			tr.unservedSincePoll = tr.unservedSincePoll || !serving
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.1.0.%d", i+1)},
				Conditions: discoveryv1.EndpointConditions{Ready: &serving},
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: name, UID: tr.pod.UID},
			})
		}
		k.mu.Unlock()
		var err error
		if slice.ResourceVersion == "" {
			slice, err = slices.Create(context.Background(), slice, metav1.CreateOptions{})
		} else {
			slice, err = slices.Update(context.Background(), slice, metav1.UpdateOptions{})
		}
		return err
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(lag)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if err := write(); err != nil {
				k.mu.Lock()
				k.errs = append(k.errs, fmt.Errorf("endpoints: %w", err))
				k.mu.Unlock()
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// flippedWhileServing lists the releases a pod's view was flipped to while
// its EndpointSlice still listed it as ready.
func (k *kubelet) flippedWhileServing(name string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.pods[name].flippedServing...)
}
