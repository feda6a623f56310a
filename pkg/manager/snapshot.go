package manager

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// snapshot is the desired state that node long-polls are answered from:
// every channel's head and policy, and the per-view flips planned for each
// node. Its index changes only when its content does, so the frequent
// progress reports of nodes wake no long-poll unless they change a plan.
type snapshot struct {
	index    uint64
	channels []release.DesiredChannel
	views    map[string][]release.DesiredView
}

// watchLoop keeps the snapshot current: one blocking watch on channels and
// one on node reports; after each change the state is read once and every
// waiting long-poll is woken if the answer changed.
func (m *Manager) watchLoop(ctx context.Context) {
	var chIdx, nodeIdx, rolloutIdx atomic.Uint64
	changes := make(chan struct{}, 1)
	go m.watch(ctx, "channels", m.store.WatchChannels, &chIdx, changes)
	go m.watch(ctx, "nodes", m.store.WatchNodes, &nodeIdx, changes)
	if m.opts.Kube != nil {
		go m.watch(ctx, "rollouts", m.store.WatchRollouts, &rolloutIdx, changes)
	}
	for {
		select {
		case <-changes:
		case <-ctx.Done():
			return
		}
		// The sum of growing indexes grows whenever any does.
		if err := m.refresh(ctx, chIdx.Load()+nodeIdx.Load()+rolloutIdx.Load()); err != nil && ctx.Err() == nil {
			m.logger().Error(err, "loading desired state; retrying")
			m.sleep(ctx, time.Second)
			signal(changes)
		}
	}
}

// watch follows one store prefix, publishing its index and signalling
// every change.
func (m *Manager) watch(ctx context.Context, what string, wait func(context.Context, uint64) (uint64, error), idx *atomic.Uint64, changes chan struct{}) {
	var index uint64
	for ctx.Err() == nil {
		next, err := wait(ctx, index)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				m.logger().Error(err, "watching the store; retrying", "prefix", what)
				m.sleep(ctx, time.Second)
			}
			continue
		case next == 0 || next < index:
			// The index went backwards (a Consul snapshot restore): start
			// over rather than wait for it to catch up.
			m.logger().Info("store index went backwards; reloading", "prefix", what, "from", index, "to", next)
			index = 0
			continue
		case next == index:
			continue
		}
		index = next
		idx.Store(next)
		signal(changes)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// refresh reads channels and node reports and, when the desired state
// differs from the snapshot's, publishes it at index and wakes the polls.
func (m *Manager) refresh(ctx context.Context, index uint64) error {
	chans, err := m.store.ListChannels(ctx)
	if err != nil {
		return err
	}
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return err
	}
	desired := make([]release.DesiredChannel, 0, len(chans))
	for _, ch := range chans {
		desired = append(desired, release.DesiredChannel{
			Name: ch.Name, Head: ch.Head, Pinned: ch.Pinned, NodeKeep: ch.Config.NodeKeep, Paused: ch.Paused,
		})
	}
	views, err := m.desiredViews(ctx, chans, nodes)
	if err != nil {
		return err
	}
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if m.stopped {
		return nil
	}
	if m.ready && reflect.DeepEqual(m.snap.channels, desired) && reflect.DeepEqual(m.snap.views, views) {
		return nil
	}
	m.snap = snapshot{index: max(index, m.snap.index+1), channels: desired, views: views}
	m.ready = true
	close(m.changed)
	m.changed = make(chan struct{})
	m.metrics.snapshotIndex.Set(float64(m.snap.index))
	return nil
}

// desiredViews are the flips asked of each node: with Kubernetes, those of
// the rollout controller's stored moves; without, planFlips'.
func (m *Manager) desiredViews(ctx context.Context, chans []release.Channel, nodes []release.NodeStatus) (map[string][]release.DesiredView, error) {
	if m.opts.Kube == nil {
		return planFlips(chans, nodes), nil
	}
	rollouts, err := m.store.ListRollouts(ctx)
	if err != nil {
		return nil, err
	}
	views := map[string][]release.DesiredView{}
	for _, r := range rollouts {
		for _, mv := range r.Moves {
			if v := mv.DesiredRelease(); v != "" {
				views[mv.Node] = append(views[mv.Node], release.DesiredView{VolumeID: mv.VolumeID, PodUID: mv.PodUID, Channel: r.Channel, Release: v})
			}
		}
	}
	return views, nil
}
