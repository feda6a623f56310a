package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hydra-csi/hydra/pkg/release"
)

// NodeLabelDomain is the label domain the manager owns on Nodes: every
// key whose prefix is a channel name followed by "." and this domain is
// the manager's to set and remove; no other key is ever touched.
const NodeLabelDomain = "channels.hydra.csi.dev"

// ReadyLabelValue is the value of a ReadyLabel while the node holds the
// channel's head ready.
const ReadyLabelValue = "true"

const (
	// nodeLabelSettle is how long the labeller waits after a trigger, so
	// that a burst of node reports (a publish reaching the fleet), or of
	// Node events (its own patches coming back), shares one pass. The
	// labels steer the scheduler's preference: a second late costs a
	// little, a pass per report of a large fleet costs store reads.
	nodeLabelSettle = time.Second
	// nodeLabelResync is the longest a pass waits without a trigger:
	// reports go stale with time alone, and a failed patch is retried.
	nodeLabelResync = 30 * time.Second
)

// ReadyLabel is the Node label key that says a node holds channel's head
// ready: "<channel>.channels.hydra.csi.dev/ready". A channel name is a
// DNS-1123 label of at most 63 characters, so the prefix is a DNS
// subdomain of at most 86 (the limit is 253) and the name part is fixed.
func ReadyLabel(channel string) string {
	return channel + "." + NodeLabelDomain + "/ready"
}

// ownedLabel reports whether key is in the manager's domain.
func ownedLabel(key string) bool {
	prefix, _, ok := strings.Cut(key, "/")
	return ok && strings.HasSuffix(prefix, "."+NodeLabelDomain)
}

// readyLabels are, per reporting node, the labels it should carry: one
// ReadyLabel for each channel whose head its report lists as ready. A
// stale report counts as no report.
func (m *Manager) readyLabels(chans []release.Channel, nodes []release.NodeStatus) map[string]map[string]string {
	heads := make(map[string]string, len(chans))
	for _, ch := range chans {
		if ch.Head != "" {
			heads[ch.Name] = ch.Head
		}
	}
	out := make(map[string]map[string]string, len(nodes))
	for _, n := range nodes {
		if m.stale(n) {
			continue
		}
		for _, p := range n.Releases {
			if p.State != release.StateReady || heads[p.Channel] == "" || heads[p.Channel] != p.Version {
				continue
			}
			if out[n.Node] == nil {
				out[n.Node] = map[string]string{}
			}
			out[n.Node][ReadyLabel(p.Channel)] = ReadyLabelValue
		}
	}
	return out
}

// labelPatch is the JSON merge patch that turns the owned labels of have
// into want: the keys to add or change with their value, the owned keys
// to drop as null. Nil when nothing differs. Labels outside the domain
// are in neither map's diff and so never in the patch.
func labelPatch(have, want map[string]string) []byte {
	diff := map[string]any{}
	for k, v := range want {
		if have[k] != v {
			diff[k] = v
		}
	}
	for k := range have {
		if _, keep := want[k]; ownedLabel(k) && !keep {
			diff[k] = nil
		}
	}
	if len(diff) == 0 {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": diff}}) // strings and nulls only
	return patch
}

// runNodeLabels keeps the ready labels on the Nodes until ctx ends (a
// leader's loop with Kubernetes). It passes on every change of the node
// reports, the channels or the Nodes' labels, and every nodeLabelResync.
func (m *Manager) runNodeLabels(ctx context.Context) {
	trigger := make(chan struct{}, 1)
	var idx atomic.Uint64 // unused: the pass reads the store itself
	go m.watch(ctx, "nodes", m.store.WatchNodes, &idx, trigger)
	go m.watch(ctx, "channels", m.store.WatchChannels, &idx, trigger)
	ticker := m.clock.NewTicker(nodeLabelResync)
	defer ticker.Stop()
	m.logger().Info("node labeller running", "domain", NodeLabelDomain)
	for {
		select {
		case <-trigger:
			m.settleNodeLabels(ctx, trigger)
		case <-m.nodeLabelsDirty:
			m.settleNodeLabels(ctx, trigger)
		case <-ticker.C():
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		if err := m.labelNodes(ctx); err != nil && ctx.Err() == nil {
			m.logger().Error(err, "node labels pass")
		}
	}
}

// settleNodeLabels waits nodeLabelSettle, then drops the triggers that
// came meanwhile: the pass that follows sees their changes. Wall time, as
// spaceNodeRefresh: it only spaces out work, and a fake clock in tests
// must not hold passes back.
func (m *Manager) settleNodeLabels(ctx context.Context, trigger chan struct{}) {
	select {
	case <-time.After(nodeLabelSettle):
	case <-ctx.Done():
		return
	}
	for _, c := range []chan struct{}{trigger, m.nodeLabelsDirty} {
		select {
		case <-c:
		default:
		}
	}
}

// labelNodes patches every known Node whose owned labels differ from what
// the reports say. A reporting node without a Node object is skipped: the
// API server does not know it.
func (m *Manager) labelNodes(ctx context.Context) error {
	chans, err := m.store.ListChannels(ctx)
	if err != nil {
		return fmt.Errorf("manager: node labels: list channels: %w", err)
	}
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return fmt.Errorf("manager: node labels: list node reports: %w", err)
	}
	want := m.readyLabels(chans, nodes)
	var errs []error
	for name, have := range m.kubeNodes.all() {
		patch := labelPatch(have, want[name])
		if patch == nil {
			continue
		}
		_, err := m.opts.Kube.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
		switch {
		case apierrors.IsNotFound(err):
			continue // deleted since the informer saw it
		case apierrors.IsForbidden(err):
			// Every other Node would answer the same: one error, not
			// one per Node.
			m.metrics.nodeLabelPatches.WithLabelValues("error").Inc()
			return fmt.Errorf("manager: node labels: node %s: patch labels (the manager's ServiceAccount needs patch on nodes): %w", name, err)
		case err != nil:
			m.metrics.nodeLabelPatches.WithLabelValues("error").Inc()
			errs = append(errs, fmt.Errorf("node %s: patch labels %s: %w", name, patch, err))
			continue
		}
		m.metrics.nodeLabelPatches.WithLabelValues("ok").Inc()
		m.logger().V(2).Info("node labels", "node", name, "patch", string(patch))
	}
	if len(errs) > 0 {
		return fmt.Errorf("manager: node labels: %w", errors.Join(errs...))
	}
	return nil
}

// all is a copy of the known Nodes' labels by name; each labels map is
// never changed after set stores it, so the maps are shared.
func (k *kubeNodes) all() map[string]map[string]string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return maps.Clone(k.labels)
}
