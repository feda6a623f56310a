package chaos_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

const (
	// chaosFor is how long parts are killed; convergeTimeout bounds the
	// wait for every pod to serve the head afterwards.
	chaosFor        = 45 * time.Second
	convergeTimeout = 3 * time.Minute
	dataReady       = "hydra.csi.dev/data-ready"
	pods            = 4
	driverName      = "hydra.csi.dev"
)

// TestChaosDuringRollouts publishes three releases while, every few
// seconds, one of the manager leader, the Consul server, a node plugin
// and MinIO is SIGKILLed and started again. Then every pod serves the
// head, none is left drained, at most one pod of the Deployment was ever
// drained at once, every published release is still listed, and every
// byte in every node's store and every pod's view is what was published.
// HYDRA_CHAOS_SEED replays a run's choice of victims.
func TestChaosDuringRollouts(t *testing.T) {
	s := &system{t: t}
	s.kube = testenv.StartKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.consul = testenv.StartConsulServer(t)
	s.minio = testenv.StartMinIO(t)
	s.minio.CreateBucket(t, bucket)
	for _, kv := range s.minio.Env() { // the test's own S3 listing
		k, v, _ := cutEnv(kv)
		t.Setenv(k, v)
	}
	for i := range 2 {
		s.managers = append(s.managers, startManager(t, i, s.consul.Addr, s.kube.Kubeconfig))
	}
	s.withManager(time.Minute, "create the channel", func(cl *client.Client) error {
		_, err := cl.CreateChannel(ctx, channel, release.Config{Keep: 100, Rollout: release.RolloutPolicy{
			MaxUnavailable: 1, Drain: release.Duration{Duration: time.Second}, ReloadTimeout: release.Duration{Duration: time.Minute}}})
		if client.IsConflict(err) {
			return nil
		}
		return err
	})
	if err := s.publish("v1"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // each node's agent talks to its own replica
		s.nodes = append(s.nodes, startNode(t, "node-"+strconv.Itoa(i+1), s.managers[i].url, s.minio.Env()))
	}
	k := startKubelet(t, cs)
	var ps []*podVolume
	for i := range pods {
		ps = append(ps, k.startPod(i, s.nodes[i%2]))
	}
	waitConverged(t, k, ps, "v1", convergeTimeout)

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HYDRA_CHAOS_SEED"); v != "" {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("HYDRA_CHAOS_SEED: %v", err)
		}
	}
	t.Logf("chaos seed %d (HYDRA_CHAOS_SEED=%d replays the victims)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	// Publish v2, v3 and v4 while parts die.
	pubErr := make(chan error, 1)
	go func() {
		for _, v := range []string{"v2", "v3", "v4"} {
			if err := s.publish(v); err != nil {
				pubErr <- err
				return
			}
			time.Sleep(chaosFor / 3)
		}
		pubErr <- nil
	}()
	start := time.Now()
	var kills []string
	for time.Since(start) < chaosFor {
		kills = append(kills, s.killOne(rng))
		time.Sleep(time.Second + time.Duration(rng.IntN(2000))*time.Millisecond)
	}
	t.Logf("killed, in order: %v", kills)
	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}

	head := s.published[len(s.published)-1]
	waitConverged(t, k, ps, head, convergeTimeout)
	if n := k.maxDrainedAtOnce(); n > 1 {
		t.Errorf("%d pods of the Deployment were drained at once; maxUnavailable is 1", n)
	}
	s.checkReleasesKept()
	for _, n := range s.nodes {
		checkStore(t, n)
	}
	for _, p := range ps {
		for i := range shards {
			got, err := os.ReadFile(filepath.Join(p.target, "current", dataset, fmt.Sprintf("shard-%d.bin", i)))
			if err != nil || !bytes.Equal(got, content(head, i)) {
				t.Errorf("pod %s reads wrong bytes in shard-%d.bin of %s (err %v)", p.pod, i, head, err)
			}
		}
	}
}

func cutEnv(kv string) (string, string, bool) {
	for i := range len(kv) {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// killOne SIGKILLs one part chosen by rng, waits a moment and starts it
// again; it returns what it killed.
func (s *system) killOne(rng *rand.Rand) string {
	pause := func() { time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond) }
	switch rng.IntN(4) {
	case 0:
		m := s.managers[rng.IntN(len(s.managers))]
		for _, c := range s.managers {
			if c.leads() {
				m = c
			}
		}
		m.stop(syscall.SIGKILL)
		pause()
		m.start(m.ready)
		return m.name
	case 1:
		s.consul.Kill()
		pause()
		s.consul.Start(s.t)
		return "consul"
	case 2:
		n := s.nodes[rng.IntN(len(s.nodes))]
		n.stop(syscall.SIGKILL)
		pause()
		n.start(n.ready)
		return n.name
	default:
		s.minio.Kill()
		pause()
		s.minio.Start(s.t)
		return "minio"
	}
}

// checkReleasesKept: every release the manager confirmed is still there.
func (s *system) checkReleasesKept() {
	var got []release.Summary
	s.withManager(time.Minute, "list releases", func(cl *client.Client) error {
		var err error
		got, err = cl.ListReleases(context.Background(), channel)
		return err
	})
	for _, v := range s.published {
		if !slices.ContainsFunc(got, func(r release.Summary) bool { return r.Version == v }) {
			s.t.Errorf("published release %s is gone from the manager", v)
		}
	}
}

// checkStore reads every file of every release in a node's store and
// compares it with what was published.
func checkStore(t *testing.T, n *node) {
	t.Helper()
	versions, err := os.ReadDir(filepath.Join(n.root, "store", channel))
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	if len(versions) == 0 {
		t.Errorf("%s: no release in the store", n.name)
	}
	for _, v := range versions {
		for i := range shards {
			got, err := os.ReadFile(filepath.Join(n.root, "store", channel, v.Name(), dataset, fmt.Sprintf("shard-%d.bin", i)))
			if err != nil || !bytes.Equal(got, content(v.Name(), i)) {
				t.Errorf("%s: store/%s/%s/shard-%d.bin is not what was published (err %v)", n.name, channel, v.Name(), i, err)
			}
		}
	}
}

// podVolume is one pod and its volume as kubelet mounted it.
type podVolume struct {
	pod, uid, target string
	node             *node
}

// current is the release the pod's view shows.
func (p *podVolume) current() string {
	link, err := os.Readlink(filepath.Join(p.target, "current"))
	if err != nil {
		return ""
	}
	return filepath.Base(link)
}

// waitConverged waits until every pod's view shows version and every pod
// is Ready with its data-ready condition True.
func waitConverged(t *testing.T, k *kubelet, ps []*podVolume, version string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var behind []string
		for _, p := range ps {
			if cur := p.current(); cur != version || !k.servesData(p.pod) {
				behind = append(behind, fmt.Sprintf("%s on %q ready=%v", p.pod, cur, k.servesData(p.pod)))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v not every pod serves %s: %v", timeout, version, behind)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kubelet plays the kubelet for the test's pods: containers always
// Ready, pod Ready exactly when the readiness gate is True. It records
// the most pods drained (gate False) at once.
type kubelet struct {
	t  *testing.T
	cs kubernetes.Interface

	mu         sync.Mutex
	gate       map[string]corev1.ConditionStatus
	ready      map[string]bool
	maxDrained int
}

func startKubelet(t *testing.T, cs kubernetes.Interface) *kubelet {
	k := &kubelet{t: t, cs: cs, gate: map[string]corev1.ConditionStatus{}, ready: map[string]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { k.observe(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { k.observe(obj.(*corev1.Pod)) },
	}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	factory.WaitForCacheSync(stop)
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	return k
}

// observe computes Ready from the gate and writes it when it changed.
func (k *kubelet) observe(pod *corev1.Pod) {
	gate := corev1.ConditionUnknown
	ready := false
	for _, c := range pod.Status.Conditions {
		switch c.Type {
		case dataReady:
			gate = c.Status
		case corev1.PodReady:
			ready = c.Status == corev1.ConditionTrue
		}
	}
	k.mu.Lock()
	k.gate[pod.Name] = gate
	k.ready[pod.Name] = ready
	drained := 0
	for _, g := range k.gate {
		if g == corev1.ConditionFalse {
			drained++
		}
	}
	k.maxDrained = max(k.maxDrained, drained)
	k.mu.Unlock()
	want := gate == corev1.ConditionTrue
	if ready == want {
		return
	}
	st := pod.Status.DeepCopy()
	testenv.SetPodCondition(st, corev1.ContainersReady, true)
	testenv.SetPodCondition(st, corev1.PodReady, want)
	p := pod.DeepCopy()
	p.Status = *st
	// A conflict means a newer version is on its way to observe.
	_, _ = k.cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
}

// servesData: the pod is Ready and its gate True.
func (k *kubelet) servesData(pod string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.ready[pod] && k.gate[pod] == corev1.ConditionTrue
}

func (k *kubelet) maxDrainedAtOnce() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.maxDrained
}

// startPod creates a gated pod of the Deployment "web" on n and makes its
// volume as kubelet would: NodeStageVolume (retried until the release is
// there), then NodePublishVolume with the pod's identity.
func (k *kubelet) startPod(i int, n *node) *podVolume {
	t := k.t
	t.Helper()
	yes := true
	name := fmt.Sprintf("web-%d", i)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": "web", "pod-template-hash": "5d8f"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-5d8f", UID: types.UID("rs-web"), Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: dataReady}}},
	}
	pod, err := k.cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &podVolume{pod: name, uid: string(pod.UID), node: n, target: filepath.Join(n.kubelet, "pods", string(pod.UID), "volumes", "data", "mount")}
	vol := fmt.Sprintf("hydra-%s-%016x", channel, i)
	staging := filepath.Join(n.kubelet, "plugins", "kubernetes.io", "csi", driverName, vol, "globalmount")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	capability := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
	}
	vc := map[string]string{"channel": channel}
	retry(t, 2*time.Minute, "NodeStageVolume "+vol, func(ctx context.Context) error {
		_, err := n.csi.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: staging,
			VolumeCapability: capability, VolumeContext: vc})
		return err
	})
	pc := map[string]string{"channel": channel, "csi.storage.k8s.io/pod.uid": p.uid,
		"csi.storage.k8s.io/pod.name": name, "csi.storage.k8s.io/pod.namespace": ns, "csi.storage.k8s.io/ephemeral": "false"}
	retry(t, time.Minute, "NodePublishVolume "+vol, func(ctx context.Context) error {
		_, err := n.csi.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol, StagingTargetPath: staging,
			TargetPath: p.target, Readonly: true, VolumeCapability: capability, VolumeContext: pc})
		return err
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := n.csi.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol, TargetPath: p.target}); err != nil {
			t.Errorf("NodeUnpublishVolume %s: %v", vol, err)
		}
	})
	k.observe(pod)
	return p
}

// retry calls f with a 20 s deadline until it succeeds or timeout passes.
func retry(t *testing.T, timeout time.Duration, what string, f func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
