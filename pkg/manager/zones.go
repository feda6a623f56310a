package manager

import (
	"context"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	toolscache "k8s.io/client-go/tools/cache"

	"github.com/hydra-csi/hydra/pkg/release"
)

// ZoneLabel is the Node label whose value is a node's zone for peer
// distribution when the manager runs with Kubernetes.
const ZoneLabel = "topology.kubernetes.io/zone"

// kubeNodes are the labels of every Kubernetes Node, as a shared informer
// sees them: the zone label groups peers, and all of them select warm
// nodes. Every replica keeps one: any replica answers the nodes'
// long-polls.
type kubeNodes struct {
	mu     sync.RWMutex
	labels map[string]map[string]string
	// deleted are the Nodes this replica saw deleted and not created
	// again: their reports protect nothing (Manager.stale). Only names
	// with a stored report are kept (pruneDeleted).
	deleted map[string]bool
}

// zone is node's zone label value ("" without the label) and whether the
// Node is known.
func (k *kubeNodes) zone(node string) (string, bool) {
	labels, ok := k.labelsOf(node)
	return labels[ZoneLabel], ok
}

// labelsOf is node's labels and whether the Node is known. The map is
// never changed after set stores it, so callers may read it unlocked.
func (k *kubeNodes) labelsOf(node string) (map[string]string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	v, ok := k.labels[node]
	return v, ok
}

// set records a Node's labels and reports whether they changed.
func (k *kubeNodes) set(node string, labels map[string]string, present bool) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	old, had := k.labels[node]
	switch {
	case !present:
		delete(k.labels, node)
		k.deleted[node] = true
		return had
	case had && maps.Equal(old, labels):
		return false
	}
	delete(k.deleted, node)
	if labels == nil {
		labels = map[string]string{}
	}
	k.labels[node] = labels
	return true
}

// wasDeleted reports whether node's Node was deleted (and not created
// again) while this replica watched.
func (k *kubeNodes) wasDeleted(node string) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.deleted[node]
}

// pruneDeleted forgets the deleted Nodes that have no report left, so
// that the set stays as small as the stored reports however many nodes
// come and go.
func (k *kubeNodes) pruneDeleted(nodes []release.NodeStatus) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.deleted) == 0 {
		return
	}
	reported := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		reported[n.Node] = true
	}
	for node := range k.deleted {
		if !reported[node] {
			delete(k.deleted, node)
		}
	}
}

// zoneOf is n's zone: its Kubernetes Node's label when the manager runs
// with Kubernetes and knows the Node, else the zone n reports.
func (m *Manager) zoneOf(n release.NodeStatus) string {
	if z, ok := m.kubeNodes.zone(n.Node); ok {
		return z
	}
	if n.Peer == nil {
		return ""
	}
	return n.Peer.Zone
}

// labelsOf is n's labels for warm selectors: its Kubernetes Node's when
// the manager runs with Kubernetes and knows the Node, else the labels n
// reports (--node-labels).
func (m *Manager) labelsOf(n release.NodeStatus) map[string]string {
	if labels, ok := m.kubeNodes.labelsOf(n.Node); ok {
		return labels
	}
	return n.Labels
}

// watchNodes follows the Nodes' labels until ctx ends, asking for a
// refresh of the desired state when they change. The informer keeps only
// each Node's name and labels: a Node object is large (status, images)
// and the fleet may be thousands.
func (m *Manager) watchNodes(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(m.opts.Kube, 0, informers.WithTransform(trimNode))
	inf := factory.Core().V1().Nodes().Informer()
	update := func(obj any, present bool) {
		if tomb, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		n, ok := obj.(*corev1.Node)
		if !ok {
			return
		}
		if m.kubeNodes.set(n.Name, n.Labels, present) {
			signal(m.nodeLabelChanges)
			signal(m.nodeLabelsDirty)
		}
	}
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { update(obj, true) },
		UpdateFunc: func(_, obj any) { update(obj, true) },
		DeleteFunc: func(obj any) { update(obj, false) },
	})
	if err != nil {
		m.logger().Error(err, "labels of Nodes: informer handler; zones and warm selectors use what nodes report")
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	<-ctx.Done()
}

// trimNode keeps of a Node only what zoneOf and labelsOf read.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: n.Namespace, UID: n.UID, ResourceVersion: n.ResourceVersion,
		Labels: n.Labels}}, nil
}
