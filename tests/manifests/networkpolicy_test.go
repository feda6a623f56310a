package manifests_test

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// TestPeerNetworkPolicy: the NetworkPolicy docs/install.md shows after
// its marker selects the node plugin's pods, lets only them reach the
// peer port, and keeps open the port of the plugin's liveness probe.
func TestPeerNetworkPolicy(t *testing.T) {
	raw, err := os.ReadFile("../../docs/install.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(raw, []byte("<!-- peer-networkpolicy -->\n```yaml\n"))
	block, _, closed := bytes.Cut(after, []byte("\n```"))
	if !ok || !closed {
		t.Fatal("docs/install.md: no ```yaml block after <!-- peer-networkpolicy -->")
	}
	var np networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(block, &np); err != nil {
		t.Fatalf("docs/install.md's NetworkPolicy: %v", err)
	}
	ds, err := typed[appsv1.DaemonSet](renderName(t, "kubernetes/base"), "DaemonSet", nodeDS)
	if err != nil {
		t.Fatal(err)
	}
	pods := labels.Set(ds.Spec.Template.Labels)
	selects := func(ls networkingv1.NetworkPolicyPeer) bool {
		sel := ls.PodSelector
		return sel != nil && ls.NamespaceSelector == nil && ls.IPBlock == nil && len(sel.MatchLabels) > 0 &&
			labels.SelectorFromSet(sel.MatchLabels).Matches(pods)
	}
	if want := cmp.Or(ds.Namespace, "hydra-system"); np.Namespace != want {
		t.Errorf("namespace %q: want the DaemonSet's, %s", np.Namespace, want)
	}
	if !selects(networkingv1.NetworkPolicyPeer{PodSelector: &np.Spec.PodSelector}) || !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("podSelector %v, policyTypes %v: want the node plugin's pods (%v), Ingress only", np.Spec.PodSelector, np.Spec.PolicyTypes, pods)
	}
	port := func(r networkingv1.NetworkPolicyIngressRule, n int) bool {
		return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool {
			return p.Port != nil && p.Port.IntValue() == n && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP)
		})
	}
	liveness, err := portNumber(nodeCSI(ds), ds.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Port)
	if err != nil {
		t.Fatal(err)
	}
	var peerFromNodes, peerFromOthers, probes bool
	for _, r := range np.Spec.Ingress {
		onlyNodes := len(r.From) > 0 && !slices.ContainsFunc(r.From, func(p networkingv1.NetworkPolicyPeer) bool { return !selects(p) })
		switch {
		case port(r, peerPort) && onlyNodes:
			peerFromNodes = true
		case port(r, peerPort) || len(r.Ports) == 0:
			peerFromOthers = true
		}
		if port(r, liveness) && len(r.From) == 0 {
			probes = true
		}
	}
	if !peerFromNodes || peerFromOthers {
		t.Errorf("ingress %+v: want port %d from the node plugin's pods only", np.Spec.Ingress, peerPort)
	}
	if !probes {
		t.Errorf("ingress %+v: want port %d (liveness, metrics) open", np.Spec.Ingress, liveness)
	}
}
