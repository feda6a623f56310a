// Package rollout_test runs the manager's rollout controller against a real
// etcd and kube-apiserver: the hydra-manager binary (bbolt store, killable
// with SIGKILL), two real node agents with their own stores downloading
// from a real MinIO, and the test itself playing the kubelet — it creates
// pods with node names and readiness gates, makes the views their volumes
// would have, and writes pod readiness as a kubelet would.
package rollout_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// managerBin is hydra-manager built once for the test binary.
var managerBin string

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinary(m, "github.com/hydra-csi/hydra/cmd/hydra-manager", &managerBin))
}

const (
	ns      = "shop"
	dataset = "idx"
	channel = "catalog"
)

// cluster is one test's world.
type cluster struct {
	t     *testing.T
	kube  *testenv.Kube
	cs    kubernetes.Interface
	minio *testenv.MinIO
	mgr   *managerProc
	cl    *client.Client
	nodes map[string]*node
	let   *kubelet
}

func newCluster(t *testing.T, nodeNames ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: map[string]*node{}}
	c.kube = testenv.StartKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager makes the namespace's default ServiceAccount,
	// which pod admission wants.
	if _, err := c.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.minio = testenv.StartMinIO(t)
	for _, kv := range c.minio.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	c.minio.CreateBucket(t, "data")

	c.mgr = startManager(t, c.kube.Kubeconfig)
	if c.cl, err = client.New(c.mgr.url); err != nil {
		t.Fatal(err)
	}
	for _, name := range nodeNames {
		c.nodes[name] = startNode(t, name, c.mgr.url)
	}
	c.let = startKubelet(t, c)
	return c
}

// createChannel makes the test channel with the given rollout policy.
func (c *cluster) createChannel(policy release.RolloutPolicy) {
	c.t.Helper()
	if _, err := c.cl.CreateChannel(context.Background(), channel, release.Config{Rollout: policy}); err != nil {
		c.t.Fatal(err)
	}
}

// publish uploads a small release to MinIO and publishes it; the head
// moves to it.
func (c *cluster) publish(version string) { c.publishWith(version, nil) }

// publishWith is publish with edit run between listing the objects and
// publishing their manifest: it may change either.
func (c *cluster) publishWith(version string, edit func(prefix string, man *release.Manifest)) {
	c.t.Helper()
	prefix := channel + "/" + version + "/"
	for i := range 3 {
		c.minio.Put(c.t, "data", fmt.Sprintf("%sshard-%d.bin", prefix, i), []byte(strings.Repeat(version, 1000+i)))
	}
	ctx := context.Background()
	lister, err := source.NewS3(ctx, source.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	src, err := release.ParseSource("s3://data/" + prefix)
	if err != nil {
		c.t.Fatal(err)
	}
	man, err := lister.List(ctx, src)
	if err != nil {
		c.t.Fatal(err)
	}
	if edit != nil {
		edit(prefix, &man)
	}
	_, err = c.cl.Publish(ctx, channel, api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: dataset, Source: src.String(), Manifest: man}}})
	if err != nil {
		c.t.Fatal(err)
	}
}

// managerProc is the hydra-manager binary on a fixed port and bbolt file,
// so that it can be killed and started again on the same state.
type managerProc struct {
	t    testing.TB
	args []string
	url  string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startManager(t testing.TB, kubeconfig string) *managerProc {
	t.Helper()
	dir := t.TempDir()
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	p := &managerProc{t: t, url: "http://" + addr, log: filepath.Join(dir, "manager.log"),
		args: []string{"--listen=" + addr, "--store=bolt://" + filepath.Join(dir, "state.db"), "--insecure-no-auth",
			"--kubeconfig=" + kubeconfig, "--retention-interval=1h", "--shutdown-timeout=2s", "-v=2",
			"--lease-namespace=" + ns, "--lease-duration=3s"}}
	p.start()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() || os.Getenv("HYDRA_TEST_LOGS") != "" {
			raw, _ := os.ReadFile(p.log)
			if len(raw) > 16<<10 {
				raw = raw[len(raw)-16<<10:]
			}
			t.Logf("manager log (tail):\n%s", raw)
		}
	})
	return p
}

func (p *managerProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(managerBin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	eventually(p.t, 30*time.Second, "the manager to be ready", func() bool {
		resp, err := http.Get(p.url + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stop ends the process with sig and waits for it.
func (p *managerProc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// node is a real node agent with its own release store and views.
type node struct {
	name  string
	cache *cache.Cache
	views *cache.Views
	agent *agent.Agent
	// metrics holds the agent's and the cache's metrics.
	metrics *prometheus.Registry
}

func startNode(t *testing.T, name, managerURL string) *node {
	t.Helper()
	cl, err := client.New(managerURL)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: source.NewReaderMux(source.FetchOptions{}), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, cache: c, views: cache.NewViews(c.Layout()), metrics: reg}
	n.agent, err = agent.New(agent.Options{Node: name, Client: cl, Cache: c, Views: n.views,
		ReportInterval: 100 * time.Millisecond, PollWait: 5 * time.Second, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.agent.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// current is the release the pod's view shows, "" without a view.
func (n *node) current(pod *corev1.Pod) string {
	info, err := n.views.Get(volumeOf(pod), string(pod.UID))
	if err != nil {
		return ""
	}
	return info.Current
}

// volumeOf is the volume ID of the pod's view: for a PVC, the one
// hydra-csi's CreateVolume gives its PV (pvOf the claim); else an inline
// volume's.
func volumeOf(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			return release.VolumeID(channel, pvOf(v.PersistentVolumeClaim.ClaimName))
		}
	}
	return "vol-" + pod.Name
}

// pvOf names the PV a test PVC is bound to (no PV object is made: the
// manager reads only the claim's spec.volumeName).
func pvOf(claim string) string { return "pvc-" + claim }

// podSpec is a pod the test starts.
type podSpec struct {
	name, node string
	// owner is the controlling ReplicaSet's name (pods of one Deployment
	// "web" have owner "web-5d8f" and pod-template-hash "5d8f").
	owner, hash string
	gated       bool
	reload      string
	// pinned pins the pod's volume to a release.
	pinned string
	// claim, when set, is the PVC (made with the pod) its volume mounts.
	claim string
}

// startPod does what the scheduler, kubelet and CSI plugin would: creates
// the pod bound to its node, stages the head on the node and makes the
// view its volume's NodePublish would, and marks the containers Ready.
func (c *cluster) startPod(s podSpec) *corev1.Pod {
	c.t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Namespace: ns, Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: s.node, Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
	}
	if s.owner != "" {
		yes := true
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: s.owner, UID: types.UID("rs-" + s.owner), Controller: &yes}}
		pod.Labels["pod-template-hash"] = s.hash
	}
	if s.gated {
		pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "hydra.csi.dev/data-ready"}}
	}
	if s.reload != "" {
		pod.Annotations = map[string]string{"hydra.csi.dev/reload": s.reload}
	}
	if s.claim != "" {
		c.createClaim(s.claim)
		pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.claim, ReadOnly: true}}}}
	}
	pod, err := c.cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	n := c.nodes[s.node]
	head := c.head()
	version := head
	if s.pinned != "" {
		version = s.pinned
	}
	if err := n.agent.Ensure(ctx, channel, version, nil); err != nil { // the node's own credentials
		c.t.Fatal(err)
	}
	_, err = n.views.Create(cache.ViewRecord{VolumeID: volumeOf(pod), PodUID: string(pod.UID), PodName: pod.Name,
		PodNamespace: ns, Channel: channel, Medium: "disk", Pinned: s.pinned}, version)
	if err != nil {
		c.t.Fatal(err)
	}
	n.agent.Poke()
	c.let.run(pod, n)
	return pod
}

// createClaim makes a PVC of the hydra-nvme class, as bound by
// csi-provisioner to the PV pvOf(name).
func (c *cluster) createClaim(name string) {
	c.t.Helper()
	class := "hydra-nvme"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: map[string]string{"hydra.csi.dev/channel": channel}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
			StorageClassName: &class,
			VolumeName:       pvOf(name),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := c.cs.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) head() string {
	c.t.Helper()
	d, err := c.cl.GetChannel(context.Background(), channel)
	if err != nil {
		c.t.Fatal(err)
	}
	return d.Channel.Head
}

// waitAllOn waits until every listed pod's view shows version and every
// pod is Ready.
func (c *cluster) waitAllOn(timeout time.Duration, version string, pods ...*corev1.Pod) {
	c.t.Helper()
	eventually(c.t, timeout, "every pod Ready on "+version, func() bool {
		for _, p := range pods {
			if c.nodes[p.Spec.NodeName].current(p) != version || !c.let.ready(p.Name) {
				return false
			}
		}
		return true
	})
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
