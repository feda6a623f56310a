package csi_test

import (
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// The parameters csi-provisioner adds with --extra-create-metadata.
const (
	pvcNameParam = "csi.storage.k8s.io/pvc/name"
	pvcNsParam   = "csi.storage.k8s.io/pvc/namespace"
	pvcNs        = "team-a"
)

// TestChannelFromPVC runs CreateVolume as csi-provisioner does for a class
// without a channel parameter, against a real kube-apiserver (and etcd)
// holding the PVCs, and a real manager: the channel comes from the PVC's
// annotations (docs/design.md §3), and each way of failing has its code.
func TestChannelFromPVC(t *testing.T) {
	kube := testenv.StartKube(t)
	mgr := managertest.Start(t, managertest.Options{})
	publishLocal(t, mgr.URL, "models", "v1")
	publishLocal(t, mgr.URL, "other", "v7")

	pvcs := pvcClient(t, kube.Kubeconfig)
	for name, ann := range map[string]map[string]string{
		"follows":   {"hydra.csi.dev/channel": "models"},
		"pinned":    {"hydra.csi.dev/channel": "models", "hydra.csi.dev/release": "v1"},
		"bad-chan":  {"hydra.csi.dev/channel": "Bad_Name"},
		"bad-pin":   {"hydra.csi.dev/channel": "models", "hydra.csi.dev/release": "../v1"},
		"unknown":   {"hydra.csi.dev/channel": "nobody-publishes-this"},
		"plain":     nil,
		"pin-other": {"hydra.csi.dev/channel": "models", "hydra.csi.dev/release": "v7"},
	} {
		createPVC(t, pvcs, name, ann)
	}
	ctrl := startController(t, mgr.URL, "--kubeconfig="+kube.Kubeconfig)
	of := func(pvc string) map[string]string { return map[string]string{pvcNameParam: pvc, pvcNsParam: pvcNs} }

	t.Run("resolved", func(t *testing.T) {
		for _, tc := range []struct {
			pvc     string
			params  map[string]string
			want    map[string]string
			wantCap int64
		}{
			{"follows", nil, map[string]string{"channel": "models", "medium": "disk"}, int64(len("data of v1"))},
			{"pinned", nil, map[string]string{"channel": "models", "medium": "disk", "release": "v1"}, int64(len("data of v1"))},
			{"pinned", map[string]string{"medium": "memory"}, map[string]string{"channel": "models", "medium": "memory", "release": "v1"}, int64(len("data of v1"))},
			// The StorageClass parameter is found first and wins: the
			// PVC is not read, its annotations are not used.
			{"follows", map[string]string{"channel": "other"}, map[string]string{"channel": "other", "medium": "disk"}, int64(len("data of v7"))},
			{"bad-chan", map[string]string{"channel": "other"}, map[string]string{"channel": "other", "medium": "disk"}, int64(len("data of v7"))},
		} {
			params := of(tc.pvc)
			for k, v := range tc.params {
				params[k] = v
			}
			resp, err := ctrl.CreateVolume(rpcCtx(t), createReq("vol-"+tc.pvc, params))
			if err != nil {
				t.Fatalf("CreateVolume of PVC %s with %v: %v", tc.pvc, tc.params, err)
			}
			if got := resp.GetVolume().GetVolumeContext(); !maps.Equal(got, tc.want) {
				t.Errorf("PVC %s with %v: volume context %v, want %v", tc.pvc, tc.params, got, tc.want)
			}
			if got := resp.GetVolume().GetCapacityBytes(); got != tc.wantCap {
				t.Errorf("PVC %s with %v: capacity %d, want %d (the size of the release it serves)", tc.pvc, tc.params, got, tc.wantCap)
			}
		}
	})

	for _, tc := range []struct {
		name   string
		params map[string]string
		code   codes.Code
		words  []string
	}{
		{"PVC missing", of("ghost"), codes.NotFound, []string{"team-a/ghost"}},
		{"PVC in another namespace", map[string]string{pvcNameParam: "follows", pvcNsParam: "team-b"}, codes.NotFound, []string{"team-b/follows"}},
		{"bad channel annotation", of("bad-chan"), codes.InvalidArgument, []string{"hydra.csi.dev/channel", "Bad_Name", "team-a/bad-chan"}},
		{"bad release annotation", of("bad-pin"), codes.InvalidArgument, []string{"hydra.csi.dev/release", "../v1", "team-a/bad-pin"}},
		{"no channel anywhere", of("plain"), codes.InvalidArgument, []string{"parameters.channel", "hydra.csi.dev/channel", "team-a/plain"}},
		{"no PVC named either", nil, codes.InvalidArgument, []string{"parameters.channel", "hydra.csi.dev/channel", "--extra-create-metadata"}},
		{"annotated channel unknown to the manager", of("unknown"), codes.NotFound, []string{"nobody-publishes-this"}},
		{"annotated release unknown to the manager", of("pin-other"), codes.NotFound, []string{"models/v7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ctrl.CreateVolume(rpcCtx(t), createReq("vol-err", tc.params))
			wantCode(t, err, tc.code, tc.words...)
		})
	}

	t.Run("no Kubernetes API configured", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod, whatever runs the test
		bare := startController(t, mgr.URL)
		_, err := bare.CreateVolume(rpcCtx(t), createReq("vol-bare", of("follows")))
		wantCode(t, err, codes.FailedPrecondition, "--kubeconfig", "team-a/follows")
		// A class with the parameter needs no API.
		if _, err := bare.CreateVolume(rpcCtx(t), createReq("vol-bare", map[string]string{"channel": "models"})); err != nil {
			t.Fatalf("CreateVolume with the channel parameter and no Kubernetes API: %v", err)
		}
	})

	// Last: the API server does not come back.
	t.Run("kube-apiserver down", func(t *testing.T) {
		kube.StopAPIServer()
		_, err := ctrl.CreateVolume(rpcCtx(t), createReq("vol-down", of("follows")))
		wantCode(t, err, codes.Unavailable, "team-a/follows")
	})
}

// TestKubeconfigUnusable: a --kubeconfig that cannot be read stops the
// controller's start with a message naming the flag.
func TestKubeconfigUnusable(t *testing.T) {
	mgr := managertest.Start(t, managertest.Options{})
	dir := t.TempDir()
	err := app.Run(context.Background(), []string{"--mode=controller", "--endpoint=unix://" + filepath.Join(dir, "csi.sock"),
		"--manager=" + mgr.URL, "--kubeconfig=" + filepath.Join(dir, "missing")}, io.Discard, nil)
	if err == nil {
		t.Fatal("hydra-csi started with a --kubeconfig that does not exist")
	}
	if want := "--kubeconfig " + filepath.Join(dir, "missing"); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
}

// publishLocal publishes version of channel (made first) from a file://
// directory holding one file, "data of <version>".
func publishLocal(t *testing.T, managerURL, channel, version string) {
	t.Helper()
	ctx := context.Background()
	cl, err := client.New(managerURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateChannel(ctx, channel, release.Config{}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.bin"), []byte("data of "+version), 0o644); err != nil { //nolint:gosec // G306: test data
		t.Fatal(err)
	}
	src, err := release.ParseSource("file://" + dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	man, err := source.NewLocal(source.Options{}).List(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Publish(ctx, channel, api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: dataset, Source: src.String(), Manifest: man}}})
	if err != nil {
		t.Fatal(err)
	}
}

// pvcClient is the test's own way to the API server, as an admin.
func pvcClient(t *testing.T, kubeconfig string) corev1client.CoreV1Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := corev1client.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pvcNs}}
	if _, err := cl.Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return cl
}

// createPVC writes the PVC a user would, of a class without a channel.
func createPVC(t *testing.T, cl corev1client.CoreV1Interface, name string, annotations map[string]string) {
	t.Helper()
	class := "hydra-nvme"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: pvcNs, Annotations: annotations},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: resource.MustParse("1Gi"),
			}},
		},
	}
	if _, err := cl.PersistentVolumeClaims(pvcNs).Create(context.Background(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PVC %s: %v", name, err)
	}
}

// startController runs hydra-csi --mode=controller in-process with the
// extra flags, stopped in t.Cleanup, and returns a client of its socket.
func startController(t *testing.T, managerURL string, flags ...string) csi.ControllerClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sock := filepath.Join(t.TempDir(), "csi.sock")
	args := append([]string{"--mode=controller", "--endpoint=unix://" + sock, "--manager=" + managerURL}, flags...)
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- app.Run(ctx, args, io.Discard, ready) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("hydra-csi: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("hydra-csi did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("hydra-csi did not start within a minute")
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewControllerClient(conn)
}

func createReq(name string, params map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{Name: name, Parameters: params, VolumeCapabilities: []*csi.VolumeCapability{mountCap()}}
}
