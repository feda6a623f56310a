package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/hydra-csi/hydra/pkg/release"
)

const (
	// podUIDIndex indexes pods, and EndpointSlices by the pods they list
	// as ready endpoints.
	podUIDIndex = "podUID"
	// rolloutResync is the longest a pass waits without a trigger: phase
	// timeouts (drain, reloadTimeout) need a clock tick, not an event.
	rolloutResync = time.Second
	// rolloutSettle is how long a pass waits after the event that
	// triggered it, so that the events of one burst share a pass.
	rolloutSettle = 20 * time.Millisecond
	// conditionWriters is how many condition patches a pass sends at once.
	conditionWriters = 16
	// reloadRequestTimeout bounds one reload POST or eviction: the pass
	// waits for it.
	reloadRequestTimeout = 10 * time.Second
)

// kubeRollout is the rollout controller's Kubernetes side: it observes
// pods and EndpointSlices through informers, runs decideRollout for every
// channel on each change (and every second), and applies the plans.
type kubeRollout struct {
	m        *Manager
	kube     kubernetes.Interface
	pods     toolscache.Indexer
	slices   toolscache.Indexer
	recorder record.EventRecorder
	http     *http.Client
	trigger  chan struct{}
	// warned: the node download failures already told with Events.
	warned warnedDownloads
}

// runRollouts runs the controller until ctx ends (the leader's loop).
func (m *Manager) runRollouts(ctx context.Context) {
	k := &kubeRollout{m: m, kube: m.opts.Kube, trigger: make(chan struct{}, 1), http: &http.Client{Timeout: reloadRequestTimeout},
		warned: warnedDownloads{}}
	factory := informers.NewSharedInformerFactory(k.kube, 0)
	podInf := factory.Core().V1().Pods().Informer()
	sliceInf := factory.Discovery().V1().EndpointSlices().Informer()
	err := errors.Join(
		podInf.AddIndexers(toolscache.Indexers{podUIDIndex: func(obj any) ([]string, error) {
			return []string{string(obj.(*corev1.Pod).UID)}, nil
		}}),
		sliceInf.AddIndexers(toolscache.Indexers{podUIDIndex: readyEndpointPods}),
	)
	if err != nil {
		m.logger().Error(err, "rollout controller: informer indexes")
		return
	}
	poke := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { signal(k.trigger) },
		UpdateFunc: func(any, any) { signal(k.trigger) },
		DeleteFunc: func(any) { signal(k.trigger) },
	}
	_, err1 := podInf.AddEventHandler(poke)
	_, err2 := sliceInf.AddEventHandler(poke)
	if err := errors.Join(err1, err2); err != nil {
		m.logger().Error(err, "rollout controller: informer handlers")
		return
	}
	k.pods, k.slices = podInf.GetIndexer(), sliceInf.GetIndexer()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: k.kube.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	k.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "hydra-manager"})

	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			m.logger().Info("rollout controller: informer did not sync", "type", typ.String())
			return
		}
	}
	go k.watchStore(ctx, m.store.WatchNodes)
	go k.watchStore(ctx, m.store.WatchChannels)
	m.logger().Info("rollout controller running")
	ticker := m.clock.NewTicker(rolloutResync)
	defer ticker.Stop()
	for {
		if err := k.pass(ctx); err != nil && ctx.Err() == nil {
			m.metrics.rolloutErrors.Inc()
			m.logger().Error(err, "rollout pass")
		}
		select {
		case <-k.trigger:
			// Let a burst of events (a wave of pods turning Ready) land
			// before deciding again: one pass for the lot.
			m.sleep(ctx, rolloutSettle)
		case <-ticker.C():
		case <-ctx.Done():
			return
		}
	}
}

// watchStore triggers a pass whenever a store prefix changes: a node
// reported a flip or a staged release, a channel's head moved.
func (k *kubeRollout) watchStore(ctx context.Context, wait func(context.Context, uint64) (uint64, error)) {
	var index uint64
	for ctx.Err() == nil {
		next, err := wait(ctx, index)
		if err != nil {
			k.m.sleep(ctx, time.Second)
			continue
		}
		if next != index {
			index = next
			signal(k.trigger)
		}
	}
}

// readyEndpointPods indexes an EndpointSlice by the UIDs of the pods it
// lists as ready (or of unknown readiness, which consumers treat as ready).
func readyEndpointPods(obj any) ([]string, error) {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	var uids []string
	for _, ep := range s.Endpoints {
		if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
			uids = append(uids, string(ep.TargetRef.UID))
		}
	}
	return uids, nil
}

// pass decides every channel once and applies the plans.
func (k *kubeRollout) pass(ctx context.Context) error {
	s := k.m.store
	chans, err := s.ListChannels(ctx)
	if err != nil {
		return err
	}
	nodes, err := s.ListNodeStatus(ctx)
	if err != nil {
		return err
	}
	k.warnDownloads(ctx, nodes)
	consumers := map[string][]consumer{}
	staged := map[string]map[string]bool{}
	for _, n := range nodes {
		staged[n.Node] = map[string]bool{}
		for _, p := range n.Releases {
			if p.State == release.StateReady {
				staged[n.Node][p.Channel+"/"+p.Version] = true
			}
		}
		for _, v := range n.Views {
			consumers[v.Channel] = append(consumers[v.Channel], consumer{node: n.Node, view: v})
		}
	}
	busy := map[string]bool{}
	pods := map[string]podState{}
	var errs []error
	for _, ch := range chans {
		rollout, version, err := s.GetRollout(ctx, ch.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(consumers[ch.Name]) == 0 && len(rollout.Moves) == 0 {
			continue
		}
		in := rolloutInput{now: k.m.now(), channel: ch, rollout: rollout, consumers: consumers[ch.Name],
			staged: stagedOf(staged, ch.Name), pods: map[string]podState{}}
		for _, c := range in.consumers {
			if p, ok := k.pod(c.view.PodUID); ok {
				in.pods[p.UID] = p
				pods[p.UID] = p
			}
		}
		plan := decideRollout(in)
		if err := k.apply(ctx, ch, rollout, version, plan); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", ch.Name, err))
			continue
		}
		for uid, b := range plan.busy {
			busy[uid] = busy[uid] || b
		}
	}
	// A pod's condition is False while any channel's move drains it. The
	// patches go out in parallel: a wave of moves touches many pods, and
	// one round trip each in a row would hold up the next pass.
	var g errgroup.Group
	g.SetLimit(conditionWriters)
	var mu sync.Mutex
	for uid, b := range busy {
		g.Go(func() error {
			if err := k.setCondition(ctx, pods[uid], !b); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	k.m.metrics.rolloutPasses.Inc()
	return errors.Join(errs...)
}

// stagedOf narrows staged[node]["channel/version"] to one channel.
func stagedOf(staged map[string]map[string]bool, channel string) map[string]map[string]bool {
	out := make(map[string]map[string]bool, len(staged))
	for node, set := range staged {
		out[node] = map[string]bool{}
		for key := range set {
			if v, ok := strings.CutPrefix(key, channel+"/"); ok {
				out[node][v] = true
			}
		}
	}
	return out
}

// apply stores the plan's moves, then pauses the channel, reloads and
// records events. Conditions are set by the caller once every channel is
// decided.
func (k *kubeRollout) apply(ctx context.Context, ch release.Channel, stored release.Rollout, version uint64, plan rolloutPlan) error {
	if !reflect.DeepEqual(normalMoves(stored.Moves), normalMoves(plan.rollout.Moves)) {
		if err := k.m.store.SaveRollout(ctx, plan.rollout, version); err != nil {
			return err
		}
		k.observe(stored.Moves, plan.rollout.Moves)
	}
	if plan.pause != "" {
		if _, err := k.m.Pause(ctx, ch.Name, plan.pause); err != nil {
			return err
		}
		k.m.metrics.rollbacks.Inc()
	}
	for _, e := range plan.events {
		k.event(podRef(e.pod), e.warning, e.reason, e.message)
		if e.claimVolume == "" {
			continue
		}
		if pod, ok := k.podObject(e.pod.UID); ok {
			for _, pvc := range k.claimsOf(ctx, pod, ch.Name, e.claimVolume) {
				k.event(claimRef(pvc), e.warning, e.reason, e.message)
			}
		}
	}
	var reloaded []string
	for _, mv := range plan.reloads {
		err := k.reload(ctx, ch.Name, mv)
		k.m.logger().V(2).Info("pod reload", "pod", mv.PodNamespace+"/"+mv.PodName, "release", mv.To, "err", err)
		if err != nil {
			k.event(podRefOf(mv), true, eventReloadFailed, fmt.Sprintf("%s: reload for %s: %v", ch.Name, mv.To, err))
			continue
		}
		reloaded = append(reloaded, moveKey(mv.VolumeID, mv.PodUID))
	}
	if len(reloaded) == 0 {
		return nil
	}
	// Mark them reloaded: read again (the save above changed the version).
	r, version, err := k.m.store.GetRollout(ctx, ch.Name)
	if err != nil {
		return err
	}
	for i := range r.Moves {
		if slices.Contains(reloaded, moveKey(r.Moves[i].VolumeID, r.Moves[i].PodUID)) {
			r.Moves[i].Reloaded = true
		}
	}
	return k.m.store.SaveRollout(ctx, r, version)
}

// normalMoves makes nil and empty compare equal.
func normalMoves(m []release.Move) []release.Move {
	if len(m) == 0 {
		return nil
	}
	return m
}

// observe updates the metrics of moves that started or ended.
func (k *kubeRollout) observe(before, after []release.Move) {
	was := map[string]release.Move{}
	for _, m := range before {
		was[moveKey(m.VolumeID, m.PodUID)] = m
	}
	log := k.m.logger().V(2)
	for _, m := range after {
		prev, ok := was[moveKey(m.VolumeID, m.PodUID)]
		if !ok {
			k.m.metrics.podMoves.Inc()
		}
		if !ok || prev.Phase != m.Phase {
			log.Info("pod move", "pod", m.PodNamespace+"/"+m.PodName, "volumeID", m.VolumeID, "node", m.Node,
				"from", m.From, "to", m.To, "phase", m.Phase, "reason", m.Reason)
		}
		delete(was, moveKey(m.VolumeID, m.PodUID))
	}
	now := k.m.now()
	for _, m := range was {
		log.Info("pod move ended", "pod", m.PodNamespace+"/"+m.PodName, "volumeID", m.VolumeID, "phase", m.Phase)
		if !m.Started.IsZero() {
			k.m.metrics.moveSeconds.Observe(now.Sub(m.Started).Seconds())
		}
	}
	phases := map[release.Phase]int{}
	for _, m := range after {
		phases[m.Phase]++
	}
	for _, p := range rolloutPhases {
		k.m.metrics.podsByPhase.WithLabelValues(string(p)).Set(float64(phases[p]))
	}
}

// podObject returns the informer's pod with uid.
func (k *kubeRollout) podObject(uid string) (*corev1.Pod, bool) {
	objs, err := k.pods.ByIndex(podUIDIndex, uid)
	if err != nil || len(objs) == 0 {
		return nil, false
	}
	return objs[0].(*corev1.Pod), true
}

// pod returns the observed state of the pod with uid.
func (k *kubeRollout) pod(uid string) (podState, bool) {
	p, ok := k.podObject(uid)
	if !ok {
		return podState{}, false
	}
	st := podState{
		UID: string(p.UID), Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Workload: podWorkload(p),
		Terminating: p.DeletionTimestamp != nil, Reload: p.Annotations[AnnotationReload],
	}
	for _, g := range p.Spec.ReadinessGates {
		st.Gated = st.Gated || g.ConditionType == ConditionDataReady
	}
	for _, c := range p.Status.Conditions {
		switch c.Type {
		case ConditionDataReady:
			st.DataReady = string(c.Status)
		case corev1.PodReady:
			st.Ready = c.Status == corev1.ConditionTrue
		case corev1.ContainersReady:
			st.ContainersReady = c.Status == corev1.ConditionTrue
		}
	}
	slices, _ := k.slices.ByIndex(podUIDIndex, uid)
	st.Serving = len(slices) > 0
	return st, true
}

// podWorkload names a pod's workload: its controller, with a ReplicaSet made
// by a Deployment named after the Deployment (the ReplicaSet's name is the
// Deployment's plus "-" and the pod-template-hash label), so that the
// pods of two ReplicaSets of one Deployment count together.
func podWorkload(p *corev1.Pod) string {
	owner := metav1.GetControllerOf(p)
	if owner == nil {
		return "Pod/" + p.Namespace + "/" + p.Name
	}
	if hash := p.Labels["pod-template-hash"]; owner.Kind == "ReplicaSet" && hash != "" {
		if name, ok := strings.CutSuffix(owner.Name, "-"+hash); ok {
			return "Deployment/" + p.Namespace + "/" + name
		}
	}
	return owner.Kind + "/" + p.Namespace + "/" + owner.Name
}

// setCondition makes the pod's data-ready condition say ready, if it does
// not already.
func (k *kubeRollout) setCondition(ctx context.Context, p podState, ready bool) error {
	if p.UID == "" || !p.Gated && p.DataReady == "" {
		return nil // no gate, no condition to keep
	}
	status, reason, msg := corev1.ConditionTrue, "DataReady", "the pod's data is in place"
	if !ready {
		status, reason, msg = corev1.ConditionFalse, "Draining", "hydra is moving this pod to another release"
	}
	if p.DataReady == string(status) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": p.UID}, // a replaced pod of the same name is not ours
		"status": map[string]any{"conditions": []corev1.PodCondition{{
			Type: ConditionDataReady, Status: status, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(k.m.now()),
		}}},
	})
	if err != nil {
		return err
	}
	_, err = k.kube.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone or replaced: the next pass sees it
	}
	if err != nil {
		return fmt.Errorf("pod %s: set %s=%s: %w", p.ref(), ConditionDataReady, status, err)
	}
	return nil
}

// reload asks a flipped pod to pick up its new data, per its annotation:
// an HTTP POST to the pod, or an eviction (which PodDisruptionBudgets may
// refuse; the caller retries on its next pass).
func (k *kubeRollout) reload(ctx context.Context, channel string, mv release.Move) error {
	p, ok := k.podObject(mv.PodUID)
	if !ok {
		return fmt.Errorf("pod %s/%s is gone", mv.PodNamespace, mv.PodName)
	}
	how := p.Annotations[AnnotationReload]
	if how == reloadRestart {
		// As the typed client's Evict does, but with client-go's retries
		// turned off: a
		// budget's refusal is a 429 with Retry-After, which the typed
		// client would sleep on ten times over, holding up every other
		// pod's step. The next pass asks again.
		ctx, cancel := context.WithTimeout(ctx, reloadRequestTimeout)
		defer cancel()
		err := k.kube.PolicyV1().RESTClient().Post().AbsPath("/api/v1").Namespace(p.Namespace).Resource("pods").Name(p.Name).SubResource("eviction").
			Body(&policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
				DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}},
			}).MaxRetries(0).Do(ctx).Error()
		if apierrors.IsTooManyRequests(err) {
			return fmt.Errorf("eviction refused, a PodDisruptionBudget allows no disruption now: %w", err)
		}
		return err
	}
	target, err := reloadURL(how, p.Status.PodIP)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"channel": channel, "release": mv.To, "previous": mv.From})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close() //nolint:errcheck // the status is the answer
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", target, resp.Status)
	}
	return nil
}

// reloadURL turns "http://:PORT/PATH" into a URL at the pod's IP.
func reloadURL(annotation, podIP string) (string, error) {
	u, err := url.Parse(annotation)
	if err != nil || u.Scheme != "http" || u.Hostname() != "" || u.Port() == "" {
		return "", fmt.Errorf("annotation %s %q: want none, restart or http://:PORT/PATH", AnnotationReload, annotation)
	}
	if podIP == "" {
		return "", errors.New("the pod has no IP yet")
	}
	u.Host = net.JoinHostPort(podIP, u.Port())
	return u.String(), nil
}

func podRef(p podState) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: types.UID(p.UID)}
}

func podRefOf(m release.Move) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: m.PodNamespace, Name: m.PodName, UID: types.UID(m.PodUID)}
}
