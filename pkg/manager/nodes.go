package manager

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// snapshot is the channel state that node long-polls are answered from.
type snapshot struct {
	index    uint64
	channels []release.DesiredChannel
}

// watchLoop keeps the snapshot current: one blocking watch on the store,
// one channel list per change, then every waiting long-poll is woken.
func (m *Manager) watchLoop(ctx context.Context) {
	var index uint64
	for ctx.Err() == nil {
		next, err := m.store.WatchChannels(ctx, index)
		if err != nil {
			if ctx.Err() == nil {
				m.logger().Error(err, "watching channels; retrying")
				m.sleep(ctx, time.Second)
			}
			continue
		}
		if next == 0 || next < index {
			// The store's index went backwards (a Consul snapshot restore):
			// start over rather than wait for it to catch up.
			m.logger().Info("store index went backwards; reloading", "from", index, "to", next)
			index = 0
			continue
		}
		if next == index {
			continue
		}
		if err := m.refresh(ctx, next); err != nil {
			if ctx.Err() == nil {
				m.logger().Error(err, "loading channels; retrying")
				m.sleep(ctx, time.Second)
			}
			continue
		}
		index = next
	}
}

// refresh loads the channels at index and wakes the long-polls.
func (m *Manager) refresh(ctx context.Context, index uint64) error {
	chans, err := m.store.ListChannels(ctx)
	if err != nil {
		return err
	}
	desired := make([]release.DesiredChannel, 0, len(chans))
	for _, ch := range chans {
		desired = append(desired, release.DesiredChannel{
			Name: ch.Name, Head: ch.Head, Pinned: ch.Pinned, NodeKeep: ch.Config.NodeKeep, Paused: ch.Paused,
		})
	}
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if m.stopped {
		return nil
	}
	m.snap = snapshot{index: index, channels: desired}
	m.ready = true
	close(m.changed)
	m.changed = make(chan struct{})
	m.metrics.snapshotIndex.Set(float64(index))
	return nil
}

func (m *Manager) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-m.clock.After(d):
	case <-ctx.Done():
	}
}

// MaxDesiredWait bounds a long-poll, below common proxy idle timeouts.
const MaxDesiredWait = 5 * time.Minute

// Desired answers a node's long-poll: at once when the state's index is
// past index (or index is 0), else when it changes or wait passes — then
// with the same index, which tells the node nothing changed.
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
		switch {
		case stopped:
			return release.Desired{}, ErrShuttingDown
		case ready && (index == 0 || snap.index != index):
			// A different index, lower included, means the node must
			// resync: the store may have been restored.
			return m.desiredFor(node, snap), nil
		}
		select {
		case <-changed:
		case <-timer.C():
			if !ready {
				return release.Desired{}, errors.New("manager: state not loaded yet")
			}
			return m.desiredFor(node, snap), nil
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

// desiredFor builds a node's answer. Per-view flip targets (Views) are set
// by the rollout controller; until it runs, nodes follow the head.
func (m *Manager) desiredFor(node string, snap snapshot) release.Desired {
	return release.Desired{Node: node, Index: snap.index, Channels: snap.channels, Views: []release.DesiredView{}}
}

// ReportStatus stores a node's report. The node in the path must match
// the body's (an agent cannot report for another node by mistake).
func (m *Manager) ReportStatus(ctx context.Context, node string, st release.NodeStatus) error {
	if st.Node == "" {
		st.Node = node
	}
	if st.Node != node {
		return &release.FieldError{Field: "node", Value: st.Node, Reason: fmt.Sprintf("does not match the node %q in the URL", node)}
	}
	if st.ReportedAt.IsZero() {
		st.ReportedAt = m.now()
	}
	if err := m.store.PutNodeStatus(ctx, st); err != nil {
		return err
	}
	m.metrics.nodeReports.Inc()
	return nil
}

// ListNodes returns every node's last report.
func (m *Manager) ListNodes(ctx context.Context) ([]release.NodeStatus, error) {
	return m.store.ListNodeStatus(ctx)
}

// ChannelStatus gathers, from every node's last report, its progress on the
// channel's releases and the views (pods) that serve the channel.
func (m *Manager) ChannelStatus(ctx context.Context, channel string) (api.ChannelStatus, error) {
	if _, err := m.store.GetChannel(ctx, channel); err != nil {
		return api.ChannelStatus{}, err
	}
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return api.ChannelStatus{}, err
	}
	out := api.ChannelStatus{Nodes: []api.NodeProgress{}, Pods: []api.PodRelease{}}
	for _, n := range nodes {
		np := api.NodeProgress{Node: n.Node, ReportedAt: n.ReportedAt}
		for _, p := range n.Releases {
			if p.Channel == channel {
				np.Releases = append(np.Releases, p)
			}
		}
		for _, v := range n.Views {
			if v.Channel == channel {
				out.Pods = append(out.Pods, api.PodRelease{Node: n.Node, View: v})
			}
		}
		if len(np.Releases) > 0 {
			out.Nodes = append(out.Nodes, np)
		}
	}
	sort.Slice(out.Pods, func(i, j int) bool {
		a, b := out.Pods[i], out.Pods[j]
		return a.PodNamespace+"/"+a.PodName+"/"+a.VolumeID < b.PodNamespace+"/"+b.PodName+"/"+b.VolumeID
	})
	return out, nil
}

// inUse returns, per channel, the releases that some node's view serves or
// is pinned to; retention never removes them.
func inUse(nodes []release.NodeStatus) map[string]map[string]bool {
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
		for _, v := range n.Views {
			mark(v.Channel, v.Current)
			mark(v.Channel, v.Pinned)
		}
	}
	return used
}
