package rollout_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Shape of the benchmark: 1,000 pods of 10 Deployments, 10 per node on
// 100 simulated nodes, each Deployment moving up to 10 pods at a time.
const (
	benchNodes       = 100
	benchGroups      = 10
	benchPodsPerNode = 10
	benchUnavailable = 10
)

// BenchmarkRollout1000Pods measures the rollout controller alone: a real
// kube-apiserver and the hydra-manager binary, 1,000 gated pods whose
// kubelet (played here) turns readiness around at once, and 100 simulated
// nodes that stage instantly and flip views as soon as they are asked.
// With no drain or reload to wait for, what remains is the controller's
// own work and its round trips through the API server and the store. It
// reports the wall time of the whole rollout and the manager's CPU time
// per pod:
//
//	go test -run '^$' -bench Rollout1000 -benchtime 1x ./tests/rollout/   (make bench)
func BenchmarkRollout1000Pods(b *testing.B) {
	kube := testenv.StartKube(b)
	cfg, err := clientcmd.BuildConfigFromFlags("", kube.Kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	mgr := startManager(b, kube.Kubeconfig)
	cl, err := client.New(mgr.url)
	if err != nil {
		b.Fatal(err)
	}
	_, err = cl.CreateChannel(ctx, channel, release.Config{Rollout: release.RolloutPolicy{
		MaxUnavailable: benchUnavailable, Drain: release.Duration{Duration: time.Minute}, ReloadTimeout: release.Duration{Duration: time.Minute},
	}})
	if err != nil {
		b.Fatal(err)
	}
	publishFake(b, cl, "v1")

	let := startFastKubelet(b, cs)
	var nodes []*simNode
	for i := range benchNodes {
		nodes = append(nodes, &simNode{name: fmt.Sprintf("node-%03d", i), cl: cl, current: map[string]string{}})
	}
	var pods []*corev1.Pod
	for i := range benchNodes * benchPodsPerNode {
		n := nodes[i%benchNodes]
		group := fmt.Sprintf("web%d", i%benchGroups)
		yes := true
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%04d", group, i), Namespace: ns,
				Labels:          map[string]string{"app": group, "pod-template-hash": "5d8f"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: group + "-5d8f", UID: types.UID("rs-" + group), Controller: &yes}}},
			Spec: corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
				ReadinessGates: []corev1.PodReadinessGate{{ConditionType: dataReady}}},
		}
		if pod, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		pods = append(pods, pod)
		n.views = append(n.views, release.View{VolumeID: "vol-" + pod.Name, PodUID: string(pod.UID), PodName: pod.Name, PodNamespace: ns, Channel: channel})
		n.current[string(pod.UID)] = "v1"
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.run(ctx) }()
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	eventually(b, 5*time.Minute, "1,000 pods Ready on v1", func() bool { return let.readyCount() == len(pods) })

	b.ResetTimer()
	for n := range b.N {
		version := fmt.Sprintf("v%d", n+2)
		cpuBefore, passesBefore := procCPU(b, mgr.cmd.Process.Pid), metricValue(b, mgr.url, "hydra_manager_rollout_passes_total")
		start := time.Now()
		publishFake(b, cl, version)
		eventually(b, 10*time.Minute, "every view on "+version+" and every pod Ready", func() bool {
			for _, nd := range nodes {
				if !nd.allOn(version) {
					return false
				}
			}
			return let.readyCount() == len(pods)
		})
		took := time.Since(start)
		cpu := procCPU(b, mgr.cmd.Process.Pid) - cpuBefore
		b.ReportMetric(took.Seconds(), "rollout-s")
		b.ReportMetric(float64(cpu.Milliseconds())/float64(len(pods)), "manager-cpu-ms/pod")
		b.ReportMetric(float64(took.Milliseconds())/float64(len(pods)), "wall-ms/pod")
		b.ReportMetric(metricValue(b, mgr.url, "hydra_manager_rollout_passes_total")-passesBefore, "passes")
	}
	b.ReportMetric(float64(let.patches()), "status-writes")
	b.ReportMetric(0, "ns/op")
}

// publishFake publishes a release whose bytes nobody downloads: the
// simulated nodes report it staged at once.
func publishFake(b *testing.B, cl *client.Client, version string) {
	b.Helper()
	_, err := cl.Publish(context.Background(), channel, api.PublishRequest{Version: version, Datasets: []release.Dataset{{
		Name: dataset, Source: "s3://data/" + version + "/",
		Manifest: release.Manifest{Files: []release.File{{Path: "a.bin", Size: 1, ETag: `"e"`}}},
	}}})
	if err != nil {
		b.Fatal(err)
	}
}

// simNode plays a node agent: it reports every release of the channel as
// staged, its views, and flips a view the moment the manager asks.
type simNode struct {
	name    string
	cl      *client.Client
	views   []release.View
	mu      sync.Mutex
	current map[string]string // by pod UID
}

func (n *simNode) run(ctx context.Context) {
	var index uint64
	for ctx.Err() == nil {
		if err := n.report(ctx); err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		d, err := n.cl.Desired(ctx, n.name, index, 30*time.Second)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		index = d.Index
		n.mu.Lock()
		for _, dv := range d.Views {
			n.current[dv.PodUID] = dv.Version
		}
		n.mu.Unlock()
	}
}

func (n *simNode) report(ctx context.Context) error {
	n.mu.Lock()
	st := release.NodeStatus{Node: n.name}
	for _, v := range n.views {
		v.Current = n.current[v.PodUID]
		st.Views = append(st.Views, v)
	}
	n.mu.Unlock()
	// Everything published so far is staged.
	for i := 1; i <= 20; i++ {
		st.Releases = append(st.Releases, release.Progress{Channel: channel, Version: "v" + strconv.Itoa(i), State: release.StateReady})
	}
	return n.cl.ReportStatus(ctx, st)
}

func (n *simNode) allOn(version string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, v := range n.views {
		if n.current[v.PodUID] != version {
			return false
		}
	}
	return true
}

// fastKubelet marks a pod Ready exactly when its data-ready condition is
// True (its containers are always Ready).
type fastKubelet struct {
	cs      kubernetes.Interface
	mu      sync.Mutex
	ready   map[string]bool
	written int
	queue   chan *corev1.Pod
}

func startFastKubelet(b *testing.B, cs kubernetes.Interface) *fastKubelet {
	k := &fastKubelet{cs: cs, ready: map[string]bool{}, queue: make(chan *corev1.Pod, 4096)}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	handle := func(obj any) {
		pod := obj.(*corev1.Pod)
		want := podCondition(pod, dataReady)
		if podCondition(pod, corev1.PodReady) != want || pod.Status.PodIP == "" {
			k.queue <- pod
			return
		}
		k.mu.Lock()
		k.ready[pod.Name] = want
		k.mu.Unlock()
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: handle, UpdateFunc: func(_, o any) { handle(o) }}); err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	factory.Start(stop)
	var wg sync.WaitGroup
	for range 8 { // status writers, as many kubelets would be
		wg.Add(1)
		go func() { defer wg.Done(); k.writer(stop) }()
	}
	b.Cleanup(func() { close(stop); factory.Shutdown(); wg.Wait() })
	return k
}

func (k *fastKubelet) writer(stop <-chan struct{}) {
	for {
		var pod *corev1.Pod
		select {
		case <-stop:
			return
		case pod = <-k.queue:
		}
		for range 5 {
			want := podCondition(pod, dataReady)
			if podCondition(pod, corev1.PodReady) == want && pod.Status.PodIP != "" {
				break
			}
			next := pod.DeepCopy()
			next.Status.Phase, next.Status.PodIP = corev1.PodRunning, "10.0.0.1"
			testenv.SetPodCondition(&next.Status, corev1.ContainersReady, true)
			testenv.SetPodCondition(&next.Status, corev1.PodReady, want)
			_, err := k.cs.CoreV1().Pods(ns).UpdateStatus(context.Background(), next, metav1.UpdateOptions{})
			if err == nil {
				k.mu.Lock()
				k.written++
				k.mu.Unlock()
				break
			}
			if pod, err = k.cs.CoreV1().Pods(ns).Get(context.Background(), pod.Name, metav1.GetOptions{}); err != nil {
				break
			}
		}
	}
}

func (k *fastKubelet) readyCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, r := range k.ready {
		if r {
			n++
		}
	}
	return n
}

func (k *fastKubelet) patches() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.written
}

// procCPU is a process's user+system CPU time so far.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command (which may hold spaces) start after ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// metricValue reads one unlabelled sample from the manager's /metrics.
func metricValue(b *testing.B, url, name string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}
