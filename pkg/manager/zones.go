package manager

import (
	"context"
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

// kubeZones is the zone label of every Kubernetes Node, as a shared
// informer sees it. Every replica keeps one: any replica answers the
// nodes' long-polls.
type kubeZones struct {
	mu    sync.RWMutex
	zones map[string]string
}

// zone is node's label value ("" without the label) and whether the
// Node is known.
func (z *kubeZones) zone(node string) (string, bool) {
	z.mu.RLock()
	defer z.mu.RUnlock()
	v, ok := z.zones[node]
	return v, ok
}

// set records a Node's zone and reports whether it changed.
func (z *kubeZones) set(node, zone string, present bool) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	old, had := z.zones[node]
	switch {
	case !present:
		delete(z.zones, node)
		return had
	case had && old == zone:
		return false
	}
	z.zones[node] = zone
	return true
}

// zoneOf is n's zone: its Kubernetes Node's label when the manager runs
// with Kubernetes and knows the Node, else the zone n reports.
func (m *Manager) zoneOf(n release.NodeStatus) string {
	if z, ok := m.kubeZones.zone(n.Node); ok {
		return z
	}
	if n.Peer == nil {
		return ""
	}
	return n.Peer.Zone
}

// watchZones follows the Nodes' zone labels until ctx ends, asking for a
// refresh of the desired state when one changes. The informer keeps only
// each Node's name and zone label: a Node object is large and the fleet
// may be thousands.
func (m *Manager) watchZones(ctx context.Context) {
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
		if m.kubeZones.set(n.Name, n.Labels[ZoneLabel], present) {
			signal(m.zoneChanges)
		}
	}
	_, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { update(obj, true) },
		UpdateFunc: func(_, obj any) { update(obj, true) },
		DeleteFunc: func(obj any) { update(obj, false) },
	})
	if err != nil {
		m.logger().Error(err, "zones of Nodes: informer handler; peers are grouped by the zones nodes report")
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	<-ctx.Done()
}

// trimNode keeps of a Node only what zoneOf reads.
func trimNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	out := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Namespace: n.Namespace, UID: n.UID, ResourceVersion: n.ResourceVersion}}
	if z, ok := n.Labels[ZoneLabel]; ok {
		out.Labels = map[string]string{ZoneLabel: z}
	}
	return out, nil
}
