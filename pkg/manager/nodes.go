package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

func (m *Manager) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-m.clock.After(d):
	case <-ctx.Done():
	}
}

// MaxDesiredWait bounds a long-poll, below common proxy idle timeouts.
const MaxDesiredWait = 5 * time.Minute

// Desired answers a node's long-poll: at once when the index of the
// node's answer differs from index (or index is 0), else when the answer
// changes or wait passes — then with the same index, which tells the node
// nothing changed. Changes that leave a node's answer as it was (another
// channel's publish, another node's flip) do not answer its poll.
func (m *Manager) Desired(ctx context.Context, node string, index uint64, wait time.Duration) (release.Desired, error) {
	if err := release.ValidateNodeName(node); err != nil {
		return release.Desired{}, err
	}
	wait = min(wait, MaxDesiredWait)
	timer := m.clock.NewTimer(wait)
	defer timer.Stop()
	m.metrics.longPolls.Inc()
	defer m.metrics.longPolls.Dec()
	for {
		snap, changed, ready, stopped := m.current()
		if stopped {
			return release.Desired{}, ErrShuttingDown
		}
		if d := desiredFor(node, snap); ready && (index == 0 || d.Index != index) {
			// A different index, lower included, means the node must
			// resync: the store may have been restored.
			return d, nil
		}
		select {
		case <-changed:
		case <-timer.C():
			if !ready {
				return release.Desired{}, errors.New("manager: state not loaded yet")
			}
			return desiredFor(node, snap), nil
		case <-ctx.Done():
			return release.Desired{}, ctx.Err()
		}
	}
}

func (m *Manager) current() (snapshot, <-chan struct{}, bool, bool) {
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	return m.snap, m.changed, m.ready, m.stopped
}

// desiredFor builds a node's answer from the snapshot: its own part when
// it has reported, else every channel.
func desiredFor(node string, snap snapshot) release.Desired {
	d := release.Desired{Node: node, Index: snap.index, Channels: snap.channels, Views: snap.views[node]}
	if a, ok := snap.nodes[node]; ok {
		d.Index, d.Channels, d.Views, d.Peers = a.index, a.channels, a.views, a.peers
		if a.servesPeers {
			d.PeerSecret = snap.peerSecret
		}
	}
	if d.Views == nil {
		d.Views = []release.DesiredView{}
	}
	return d
}

// ReportStatus stores a node's report, stamped with the manager's own
// receipt time: whatever reportedAt the node sent is ignored, so that a
// node's clock (or a forged date) cannot keep its report fresh or age
// another's. The node in the path must match the body's (an agent cannot
// report for another node by mistake).
func (m *Manager) ReportStatus(ctx context.Context, node string, st release.NodeStatus) error {
	if st.Node == "" {
		st.Node = node
	}
	if st.Node != node {
		return &release.FieldError{Field: "node", Value: st.Node, Reason: fmt.Sprintf("does not match the node %q in the URL", node)}
	}
	st.ReportedAt = m.now()
	if err := m.store.PutNodeStatus(ctx, st); err != nil {
		return err
	}
	m.metrics.nodeReports.Inc()
	return nil
}

// ListNodes returns every node's last report, each marked stale when
// older than NodeReportTTL.
func (m *Manager) ListNodes(ctx context.Context) ([]api.NodeReport, error) {
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.NodeReport, len(nodes))
	for i, n := range nodes {
		out[i] = api.NodeReport{NodeStatus: n, Stale: m.stale(n)}
	}
	return out, nil
}

// ForgetNode drops a node's report, so that its views no longer protect
// releases or block channel deletion: for a node that is gone before its
// report went stale. A live node comes back with its next report.
func (m *Manager) ForgetNode(ctx context.Context, node string) error {
	if err := release.ValidateNodeName(node); err != nil {
		return err
	}
	if _, err := m.store.GetNodeStatus(ctx, node); err != nil {
		return err
	}
	if err := m.store.DeleteNodeStatus(ctx, node); err != nil {
		return fmt.Errorf("manager: forget node %s: %w", node, err)
	}
	m.logger().Info("node forgotten", "node", node)
	return nil
}

// stale reports whether n's report is older than NodeReportTTL. Reports
// are stamped by a manager (ReportStatus), so ReportedAt is a manager's
// clock; the TTL counts from this manager's start at the earliest, so a
// manager that was down longer than the TTL does not find the whole fleet
// stale before the nodes could report again. A date further ahead than
// the TTL is no manager's stamp (one stored before reports were stamped
// on receipt) and counts as received at the start.
//
// With Kubernetes, the report of a node whose Node object was deleted is
// stale at once, whatever its age: the node is gone from the cluster and
// its pods with it, so its views protect no release for the TTL.
func (m *Manager) stale(n release.NodeStatus) bool {
	if m.kubeNodes.wasDeleted(n.Node) {
		return true
	}
	now, ttl := m.now(), m.opts.NodeReportTTL
	at := n.ReportedAt
	if at.Before(m.started) || at.After(now.Add(ttl)) {
		at = m.started
	}
	return now.Sub(at) > ttl
}

// ChannelStatus gathers, from every node's last report, its progress on the
// channel's releases and the views (pods) that serve the channel.
func (m *Manager) ChannelStatus(ctx context.Context, channel string) (api.ChannelStatus, error) {
	ch, err := m.store.GetChannel(ctx, channel)
	if err != nil {
		return api.ChannelStatus{}, err
	}
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return api.ChannelStatus{}, err
	}
	rollout, _, err := m.store.GetRollout(ctx, channel)
	if err != nil {
		return api.ChannelStatus{}, err
	}
	moves := map[string]release.Move{}
	for _, mv := range rollout.Moves {
		moves[moveKey(mv.VolumeID, mv.PodUID)] = mv
	}
	out := api.ChannelStatus{Nodes: []api.NodeProgress{}, Pods: []api.PodView{}}
	for _, n := range nodes {
		stale := m.stale(n)
		np := api.NodeProgress{Node: n.Node, ReportedAt: n.ReportedAt, Stale: stale}
		for _, p := range n.Releases {
			if p.Channel == channel {
				np.Releases = append(np.Releases, p)
			}
		}
		for _, v := range n.Views {
			if v.Channel == channel {
				pr := api.PodView{Node: n.Node, View: v, Stale: stale}
				if mv, ok := moves[moveKey(v.VolumeID, v.PodUID)]; ok {
					pr.Phase, pr.To = mv.Phase, cmp.Or(mv.DesiredVersion(), mv.To)
				}
				out.Pods = append(out.Pods, pr)
			}
		}
		if len(np.Releases) > 0 {
			out.Nodes = append(out.Nodes, np)
		}
	}
	out.Warm = m.warmNodes(ch, nodes)
	sort.Slice(out.Pods, func(i, j int) bool {
		a, b := out.Pods[i], out.Pods[j]
		return a.PodNamespace+"/"+a.PodName+"/"+a.VolumeID < b.PodNamespace+"/"+b.PodName+"/"+b.VolumeID
	})
	return out, nil
}

// warmNodes are the reporting nodes that ch's warm selector matches, by
// name, and whether each reports ch's head ready.
func (m *Manager) warmNodes(ch release.Channel, nodes []release.NodeStatus) []api.WarmNode {
	w := ch.Config.Warm
	if w == nil {
		return nil
	}
	out := []api.WarmNode{}
	for _, n := range nodes {
		if !w.Matches(m.labelsOf(n)) {
			continue
		}
		wn := api.WarmNode{Node: n.Node, Medium: w.MediumOrDefault(), Stale: m.stale(n)}
		for _, p := range n.Releases {
			if p.Channel == ch.Name && p.Version == ch.Head && p.State == release.StateReady {
				wn.HeadReady = ch.Head != ""
			}
		}
		out = append(out, wn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// inUse returns, per channel, the releases that some node's view serves or
// is pinned to; retention never removes them. A stale report protects
// nothing: its node may be gone for good.
func (m *Manager) inUse(nodes []release.NodeStatus) map[string]map[string]bool {
	used := map[string]map[string]bool{}
	mark := func(ch, v string) {
		if v == "" {
			return
		}
		if used[ch] == nil {
			used[ch] = map[string]bool{}
		}
		used[ch][v] = true
	}
	for _, n := range nodes {
		if m.stale(n) {
			continue
		}
		for _, v := range n.Views {
			mark(v.Channel, v.Current)
			mark(v.Channel, v.Pinned)
		}
	}
	return used
}
