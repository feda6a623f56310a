package manager_test

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestPeersKubeZones: with Kubernetes, a node's zone is its Node's
// topology.kubernetes.io/zone label, whatever zone it reports; a Node
// without the label is in the zone "", and a node the API server does
// not know keeps the zone it reports. Relabelling a Node moves it between
// swarms without any report.
func TestPeersKubeZones(t *testing.T) {
	cs := startKube(t)
	ctx := context.Background()
	for name, zone := range map[string]string{"kube-1": "x", "kube-2": "x", "kube-3": ""} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if zone != "" {
			n.Labels = map[string]string{manager.ZoneLabel: zone}
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tm := managertest.Start(t, managertest.Options{Kube: cs})
	m := tm.Manager
	f := peerFleet{t, m}
	mustCreate(t, m, "c", release.Config{})
	mustPublish(t, m, "c", "v1", true)
	// Reported zones that the labels overrule, but for not-kube.
	for _, n := range []node{
		{name: "kube-1", zone: "a", view: "head"},
		{name: "kube-2", zone: "b", view: "head"},
		{name: "kube-3", zone: "x", view: "head"},
		{name: "not-kube", zone: "x", view: "head"},
	} {
		f.report(n)
	}
	want := []string{"kube-1", "kube-2", "not-kube"}
	swarmOf := func(d release.Desired) []string {
		if rp := peersOf(d, "v1"); rp != nil {
			s := names(rp.Swarm)
			slices.Sort(s)
			return s
		}
		return nil
	}
	pollUntil(t, m, "kube-1", func(d release.Desired) bool { return slices.Equal(swarmOf(d), want) })
	if d := f.desired("kube-3"); len(d.Peers) != 0 {
		t.Fatalf("kube-3 (Node without a zone) got peers %+v, want none: alone in zone \"\"", d.Peers)
	}

	n, err := cs.CoreV1().Nodes().Get(ctx, "kube-3", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{manager.ZoneLabel: "x"}
	if _, err := cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"kube-1", "kube-2", "kube-3", "not-kube"}
	pollUntil(t, m, "kube-3", func(d release.Desired) bool { return slices.Equal(swarmOf(d), want) })
}

// TestDeletedNodeProtectsNothing: with Kubernetes, once a Node object is
// deleted its node's report is stale at once, long before the TTL: its
// views no longer keep releases from retention. A node the API server
// never knew keeps protecting until its own TTL, and a Node created again
// makes its report count again.
func TestDeletedNodeProtectsNothing(t *testing.T) {
	cs := startKube(t)
	ctx := context.Background()
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kube-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m := managertest.Start(t, managertest.Options{Kube: cs, RetentionInterval: 1000 * time.Hour}).Manager
	mustCreate(t, m, "r", release.Config{Keep: 1})
	for _, v := range []string{"v1", "v2", "v3"} {
		mustPublish(t, m, "r", v, true)
	}
	for node, v := range map[string]string{"kube-1": "v1", "not-kube": "v2"} {
		if err := m.ReportStatus(ctx, node, release.NodeStatus{Views: []release.View{{VolumeID: "pvc-" + node, Channel: "r", Current: v}}}); err != nil {
			t.Fatal(err)
		}
	}
	staleOf := func(node string) bool {
		nodes, err := m.ListNodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Node == node {
				return n.Stale
			}
		}
		t.Fatalf("no report of %s", node)
		return false
	}
	retain := func(want ...string) {
		t.Helper()
		if _, err := m.ApplyRetention(ctx); err != nil {
			t.Fatal(err)
		}
		wantVersions(t, m, "r", want...)
	}
	retain("v1", "v2", "v3")
	if err := cs.CoreV1().Nodes().Delete(ctx, "kube-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !staleOf("kube-1") {
		if time.Now().After(deadline) {
			t.Fatal("kube-1's report is not stale 30s after its Node was deleted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if staleOf("not-kube") {
		t.Error("not-kube's fresh report is stale")
	}
	retain("v2", "v3")

	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kube-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for staleOf("kube-1") {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatal("kube-1's report is still stale 30s after its Node came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startKube starts a real kube-apiserver and returns a client of it, for
// the tests of what the manager reads from Node objects.
func startKube(t *testing.T) kubernetes.Interface {
	t.Helper()
	kube := testenv.StartKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
