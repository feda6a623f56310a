//go:build e2e

// Package e2e_test proves Hydra where it will live: a real single-node
// Kubernetes (testenv.StartCluster: containerd, kubelet, the control plane,
// kube-proxy, CNI), Hydra's images imported into containerd, Hydra deployed
// from deploy/kubernetes with an overlay only for images and paths, and
// MinIO on the host. kubelet stages and bind-mounts a hydra-nvme PVC into
// real pods; the manager drains, flips and readies them one at a time.
//
// It runs with `make e2e` (which `make test` calls): root, the Debian
// packages of testenv.ClusterPackages, and the binaries hack/tools.sh
// builds.
package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
)

// hydraBin is the hydra CLI, built once for the test binary.
var hydraBin string

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinary(m, "github.com/hydra-csi/hydra/cmd/hydra", &hydraBin))
}

const (
	hydraNS   = "hydra-system"
	appNS     = "shop"
	channel   = "catalog"
	dataset   = "idx"
	bucket    = "datasets"
	driver    = "hydra.csi.dev"
	imageTag  = "e2e"
	managerIP = "10.96.0.100" // the manager Service's ClusterIP: no cluster DNS here
	// upTimeout bounds a deployment or a pod becoming Ready; rolloutTimeout
	// a whole rollout of two pods.
	upTimeout      = 3 * time.Minute
	rolloutTimeout = 4 * time.Minute
)

// world is one cluster with Hydra deployed on it.
type world struct {
	t       *testing.T
	c       *testenv.Cluster
	minio   *testenv.MinIO
	kubectl string
	root    string // the repository
	admin   string // the manager's admin token
	steps   []string
	began   time.Time
}

// newWorld starts the cluster with Hydra's images (built by hack/images)
// and MinIO on the cluster's host address, and makes the bucket.
func newWorld(t *testing.T) *world {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, root: root, kubectl: testenv.Tool(t, "kubectl"), began: time.Now()}
	testenv.Tool(t, "csi-provisioner") // hack/images packs it; say how to get it if missing
	images := w.buildImages()
	start := time.Now()
	w.c = testenv.StartCluster(t, images...)
	w.c.LastNamespaces = []string{hydraNS}
	t.Cleanup(w.dumpOnFailure) // runs before the cluster's teardown
	w.step("cluster up, images imported", start)
	w.minio = testenv.StartMinIOOn(t, testenv.ClusterAddr)
	w.minio.CreateBucket(t, bucket)
	t.Cleanup(func() {
		t.Logf("steps:\n  %s", strings.Join(w.steps, "\n  "))
	})
	return w
}

// dumpOnFailure shows, when the test failed, what an operator would look
// at: pods, claims, volumes, events, and the logs of Hydra's containers.
func (w *world) dumpOnFailure() {
	if !w.t.Failed() {
		return
	}
	run := func(args ...string) string {
		cmd := exec.Command(w.kubectl, append([]string{"--kubeconfig", w.c.Kubeconfig, "--request-timeout=20s"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Sprintf("%s(kubectl %s: %v)\n", out, strings.Join(args, " "), err)
		}
		return string(out)
	}
	w.t.Logf("pods:\n%s", run("get", "pods", "-A", "-o", "wide"))
	w.t.Logf("claims and volumes:\n%s", run("get", "pvc,pv", "-A"))
	w.t.Logf("events:\n%s", run("get", "events", "-A", "--sort-by=.lastTimestamp"))
	pods, err := w.c.Client.CoreV1().Pods(hydraNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			w.t.Logf("log of %s/%s:\n%s", p.Name, c.Name, run("logs", "-n", hydraNS, p.Name, "-c", c.Name, "--tail=60"))
		}
	}
}

// step records how long a step took, for the summary the test prints.
func (w *world) step(what string, since time.Time) {
	line := fmt.Sprintf("%-58s %6.1fs", what, time.Since(since).Seconds())
	w.steps = append(w.steps, line)
	w.t.Log(line)
}

// buildImages writes Hydra's images and the support images (pause,
// busybox, csi-provisioner) as docker-archive tarballs.
func (w *world) buildImages() []string {
	w.t.Helper()
	out := w.t.TempDir()
	start := time.Now()
	cmd := exec.Command("go", "run", "./hack/images", "-out", out, "-tag", imageTag, "-support")
	cmd.Dir = w.root
	if b, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("hack/images: %v\n%s", err, b)
	}
	w.step("images built (hack/images)", start)
	var files []string
	for _, name := range []string{"pause", "busybox", "csi-provisioner", "hydra-manager", "hydra-csi", "hydra-csi-node"} {
		files = append(files, filepath.Join(out, name+".tar"))
	}
	return files
}

// kube runs kubectl against the cluster.
func (w *world) kube(stdin string, args ...string) string {
	w.t.Helper()
	cmd := exec.Command(w.kubectl, append([]string{"--kubeconfig", w.c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// hydra runs the CLI against the manager's Service as the admin.
func (w *world) hydra(args ...string) string {
	w.t.Helper()
	cmd := exec.Command(hydraBin, args...)
	cmd.Env = append(os.Environ(), w.minio.Env()...)
	cmd.Env = append(cmd.Env, "HYDRA_MANAGER=http://"+managerIP, "HYDRA_TOKEN="+w.admin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("hydra %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// deploy installs Hydra from deploy/kubernetes/<source> through an overlay
// that changes only images (the tag hack/images wrote), paths (kubelet's
// root and the node store live below the cluster's directory; the node
// plugin is told its kubelet root with --kubelet-dir) and the manager's address (a fixed ClusterIP, as there is no cluster DNS).
// patches are extra kustomize patches (the Consul address).
func (w *world) deploy(source string, patches ...string) {
	t := w.t
	t.Helper()
	start := time.Now()
	ctx := t.Context()
	cs := w.c.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: hydraNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The Secrets an operator creates (deploy/kubernetes/README.md).
	w.admin = "admin-" + randHex(t)
	nodeTok, ctrlTok := "node-"+randHex(t), "ctrl-"+randHex(t)
	secrets := map[string]map[string]string{
		// The node's token is bound to the node, under its name.
		"hydra-manager-tokens":   {"tokens.csv": w.admin + ",admin\n" + nodeTok + ",node," + testenv.ClusterNode + "\n" + ctrlTok + ",reader\n"},
		"hydra-node-tokens":      {testenv.ClusterNode: nodeTok},
		"hydra-controller-token": {"token": ctrlTok},
		"hydra-s3": {
			"AWS_ACCESS_KEY_ID": w.minio.AccessKey, "AWS_SECRET_ACCESS_KEY": w.minio.SecretKey,
			"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": w.minio.Endpoint,
		},
	}
	for name, data := range secrets {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hydraNS}, StringData: data}
		if _, err := cs.CoreV1().Secrets(hydraNS).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The manager's state on bbolt wants a PersistentVolume; this cluster
	// has no storage provisioner besides Hydra, so the test provides one,
	// as an operator would.
	if source == "base" {
		w.managerVolume()
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(w.root, "deploy", "kubernetes", source))
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %s
images:
- {name: ghcr.io/hydra-csi/hydra-manager, newTag: %[2]s}
- {name: ghcr.io/hydra-csi/hydra-csi, newTag: %[2]s}
- {name: ghcr.io/hydra-csi/hydra-csi-node, newTag: %[2]s}
patches:
- target: {kind: Service, name: hydra-manager}
  patch: |-
    - {op: add, path: /spec/clusterIP, value: %[3]s}
- target: {kind: ConfigMap, name: hydra-config}
  patch: |-
    - {op: replace, path: /data/manager-url, value: "http://%[3]s"}
- target: {kind: DaemonSet, name: hydra-node}
  patch: |-
    - {op: add, path: /spec/template/spec/containers/0/args/-, value: --kubelet-dir=/var/lib/kubelet}
%[4]s`, rel, imageTag, managerIP, strings.Join(patches, ""))
	writeFile(t, filepath.Join(dir, "kustomization.yaml"), kust)
	rendered := w.kube("", "kustomize", dir)
	// Paths: kubelet's root and the node's store move below the cluster's
	// directory (hostPath volumes, mount paths and the flags naming them).
	rendered = strings.ReplaceAll(rendered, "/var/lib/kubelet", w.c.KubeletRoot)
	rendered = strings.ReplaceAll(rendered, "path: /var/lib/hydra\n", "path: "+filepath.Join(w.c.Dir, "hydra-store")+"\n")
	w.kube(rendered, "apply", "--server-side", "-f", "-")
	w.waitDeployed()
	w.step("hydra deployed from deploy/kubernetes/"+source, start)
}

// managerVolume makes a hostPath PersistentVolume for the manager's PVC.
func (w *world) managerVolume() {
	t := w.t
	path := filepath.Join(w.c.Dir, "manager-state")
	if err := os.MkdirAll(path, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65532, 65532); err != nil { // the manager runs as nonroot
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "hydra-manager-state"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}},
			ClaimRef:               &corev1.ObjectReference{Namespace: hydraNS, Name: "hydra-manager-state"},
			StorageClassName:       "",
		},
	}
	if _, err := w.c.Client.CoreV1().PersistentVolumes().Create(t.Context(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// waitDeployed waits until the node plugin, the controller and the
// manager are Ready and kubelet has registered the driver.
func (w *world) waitDeployed() {
	cs := w.c.Client
	w.c.WaitFor(upTimeout, "hydra-node DaemonSet ready", func(ctx context.Context) (bool, error) {
		ds, err := cs.AppsV1().DaemonSets(hydraNS).Get(ctx, "hydra-node", metav1.GetOptions{})
		return err == nil && ds.Status.DesiredNumberScheduled > 0 && ds.Status.NumberReady == ds.Status.DesiredNumberScheduled, nil
	})
	for _, name := range []string{"hydra-manager", "hydra-controller"} {
		w.c.WaitFor(upTimeout, name+" Deployment available", func(ctx context.Context) (bool, error) {
			return deploymentReady(ctx, w, hydraNS, name)
		})
	}
	w.c.WaitFor(upTimeout, "CSINode lists "+driver, func(ctx context.Context) (bool, error) {
		n, err := cs.StorageV1().CSINodes().Get(ctx, testenv.ClusterNode, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not there yet
		}
		for _, d := range n.Spec.Drivers {
			if d.Name == driver {
				return true, nil
			}
		}
		return false, nil
	})
	// Each attempt is a new connection with a short deadline. Until
	// kube-proxy has written the Service's DNAT rule, the ClusterIP is just
	// an address behind the host's default route (on these machines an
	// egress proxy answers it with 404s), and conntrack keeps a connection
	// opened then on that path for good: a kept-alive connection would
	// never reach the manager.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	last := "no attempt"
	defer func() {
		if w.t.Failed() {
			w.t.Logf("last answer of http://%s/readyz: %s", managerIP, last)
		}
	}()
	w.c.WaitFor(upTimeout, "the manager answering on its Service", func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+managerIP+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
}

func deploymentReady(ctx context.Context, w *world, ns, name string) (bool, error) {
	d, err := w.c.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration >= d.Generation && d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want, nil
}

// publish puts a release's files in MinIO under catalog/<version>/idx/ and
// publishes it with the CLI.
func (w *world) publish(version string) {
	w.t.Helper()
	for name, body := range releaseFiles(version) {
		w.minio.Put(w.t, bucket, channel+"/"+version+"/"+dataset+"/"+name, body)
	}
	w.hydra("publish", channel, "--version", version,
		"--dataset", fmt.Sprintf("%s=s3://%s/%s/{VERSION}/%s/", dataset, bucket, channel, dataset))
}

// releaseFiles are a release's files: version.txt names it, and a larger
// file makes the download take parts.
func releaseFiles(version string) map[string][]byte {
	big := bytes.Repeat([]byte(version+" weights "), (24<<20)/(len(version)+9))
	return map[string][]byte{
		"version.txt":      []byte(version + "\n"),
		"nested/model.bin": big,
		"empty":            {},
	}
}

// status is `hydra status CHANNEL -o json`.
func (w *world) status() api.ChannelStatus {
	w.t.Helper()
	var st api.ChannelStatus
	if err := json.Unmarshal([]byte(w.hydra("status", channel, "-o", "json")), &st); err != nil {
		w.t.Fatalf("hydra status -o json: %v", err)
	}
	return st
}

// read returns what a pod's container reads at path.
func (w *world) read(ns, pod, path string) string {
	w.t.Helper()
	return w.kube("", "exec", "-n", ns, pod, "--", "cat", path)
}

// appPods lists the running pods of a label selector.
func (w *world) appPods(ns, selector string) []corev1.Pod {
	w.t.Helper()
	pods, err := w.c.Client.CoreV1().Pods(ns).List(w.t.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		w.t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randHex(*testing.T) string { return strings.ToLower(rand.Text()) }
