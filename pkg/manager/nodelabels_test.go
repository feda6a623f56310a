package manager_test

import (
	"context"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestNodeReadyLabels: on a real kube-apiserver, the leader labels a
// Node <channel>.channels.hydra.csi.dev/ready=true while the node reports
// the channel's head ready, and removes the label when the head moves
// past what the node holds or its report goes stale. A node the API
// server does not know gets nothing, and nothing else on any Node
// changes.
func TestNodeReadyLabels(t *testing.T) {
	cs := startKube(t)
	ctx := context.Background()
	for name, labels := range map[string]map[string]string{
		"kube-1": {"pool": "search", manager.ZoneLabel: "a", "x.other.hydra.csi.dev/ready": "keep"},
		"kube-2": {"pool": "batch"},
	} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: map[string]string{"note": name}}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := nodeMeta(t, cs)
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m := managertest.Start(t, managertest.Options{Kube: cs, Clock: clk, RetentionInterval: 1000 * time.Hour}).Manager
	mustCreate(t, m, "c", release.Config{})
	mustCreate(t, m, "d", release.Config{})
	mustPublish(t, m, "c", "v1", true)
	mustPublish(t, m, "d", "v1", true)
	report := func(node string, releases ...release.Progress) {
		t.Helper()
		if err := m.ReportStatus(ctx, node, release.NodeStatus{Releases: releases}); err != nil {
			t.Fatal(err)
		}
	}
	ready := func(ch, v string) release.Progress {
		return release.Progress{Channel: ch, Version: v, State: release.StateReady}
	}
	c, d := manager.ReadyLabel("c"), manager.ReadyLabel("d")

	steps := []struct {
		name string
		act  func()
		want map[string]map[string]string // owned labels per Node
	}{
		{"head ready labels the node", func() {
			report("kube-1", ready("c", "v1"), release.Progress{Channel: "d", Version: "v1", State: release.StateDownloading})
			report("kube-2", release.Progress{Channel: "c", Version: "v1", State: release.StateFailed, Error: "boom"})
			report("ghost", ready("c", "v1"), ready("d", "v1"))
		}, map[string]map[string]string{"kube-1": {c: "true"}, "kube-2": {}}},
		{"a second channel", func() {
			report("kube-1", ready("c", "v1"), ready("d", "v1"))
			report("kube-2", ready("d", "v1"))
		}, map[string]map[string]string{"kube-1": {c: "true", d: "true"}, "kube-2": {d: "true"}}},
		{"the head moves past the node", func() {
			mustPublish(t, m, "c", "v2", true)
		}, map[string]map[string]string{"kube-1": {d: "true"}, "kube-2": {d: "true"}}},
		{"the node gets the new head", func() {
			report("kube-1", ready("c", "v1"), ready("c", "v2"), ready("d", "v1"))
		}, map[string]map[string]string{"kube-1": {c: "true", d: "true"}, "kube-2": {d: "true"}}},
		{"stale reports label nothing", func() {
			report("kube-2", ready("d", "v1"))
			clk.Step(manager.DefaultNodeReportTTL + time.Minute) // both go stale; the resync ticks
		}, map[string]map[string]string{"kube-1": {}, "kube-2": {}}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.act()
			var got map[string]map[string]string
			deadline := time.Now().Add(30 * time.Second)
			for got = ownedLabels(nodeMeta(t, cs)); !equalNested(got, s.want); got = ownedLabels(nodeMeta(t, cs)) {
				if time.Now().After(deadline) {
					t.Fatalf("owned Node labels %v, want %v", got, s.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
			after := nodeMeta(t, cs)
			if len(after) != len(before) {
				t.Fatalf("Nodes %v, want only %v: a report of an unknown node made one", keys(after), keys(before))
			}
			for name, b := range before {
				a := after[name]
				if !maps.Equal(foreignLabels(a.Labels), foreignLabels(b.Labels)) || !maps.Equal(a.Annotations, b.Annotations) {
					t.Errorf("Node %s: labels %v annotations %v, were %v %v: only owned labels may change", name, a.Labels, a.Annotations, b.Labels, b.Annotations)
				}
			}
		})
	}
}

// nodeMeta is every Node's metadata by name.
func nodeMeta(t *testing.T, cs kubernetes.Interface) map[string]metav1.ObjectMeta {
	t.Helper()
	list, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]metav1.ObjectMeta{}
	for _, n := range list.Items {
		out[n.Name] = n.ObjectMeta
	}
	return out
}

// ownedLabels keeps of each Node the labels of the manager's domain.
func ownedLabels(meta map[string]metav1.ObjectMeta) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, m := range meta {
		out[name] = map[string]string{}
		for k, v := range m.Labels {
			if strings.HasSuffix(strings.SplitN(k, "/", 2)[0], "."+manager.NodeLabelDomain) {
				out[name][k] = v
			}
		}
	}
	return out
}

// foreignLabels are the labels outside the manager's domain.
func foreignLabels(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if !strings.HasSuffix(strings.SplitN(k, "/", 2)[0], "."+manager.NodeLabelDomain) {
			out[k] = v
		}
	}
	return out
}

func equalNested(a, b map[string]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestNodeReadyLabelsWithManifestRBAC: the manager, as a user bound to
// nothing but deploy/kubernetes/base's ClusterRole hydra-manager, labels
// its Nodes: the role's rules suffice (patch, without get).
func TestNodeReadyLabelsWithManifestRBAC(t *testing.T) {
	kube := testenv.StartKube(t)
	adminCfg, err := clientcmd.BuildConfigFromFlags("", kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	role := manifestClusterRole(t, "../../deploy/kubernetes/base/manager-rbac.yaml", "hydra-manager")
	const user = "hydra-test-manager"
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name}}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "kube-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := rest.CopyConfig(adminCfg)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := managertest.Start(t, managertest.Options{Kube: cs, RetentionInterval: 1000 * time.Hour}).Manager
	mustCreate(t, m, "c", release.Config{})
	mustPublish(t, m, "c", "v1", true)
	if err := m.ReportStatus(ctx, "kube-1", release.NodeStatus{Releases: []release.Progress{{Channel: "c", Version: "v1", State: release.StateReady}}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"kube-1": {manager.ReadyLabel("c"): "true"}}
	deadline := time.Now().Add(30 * time.Second)
	for got := ownedLabels(nodeMeta(t, admin)); !equalNested(got, want); got = ownedLabels(nodeMeta(t, admin)) {
		if time.Now().After(deadline) {
			t.Fatalf("owned Node labels %v, want %v: the manifest's ClusterRole does not let the manager label Nodes", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// manifestClusterRole reads the ClusterRole name from a multi-document
// manifest.
func manifestClusterRole(t *testing.T, path, name string) *rbacv1.ClusterRole {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var r rbacv1.ClusterRole
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if r.Kind == "ClusterRole" && r.Name == name {
			return &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: r.Rules}
		}
	}
	t.Fatalf("%s: no ClusterRole %s", path, name)
	return nil
}
