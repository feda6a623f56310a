package manager

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// snapshot is the desired state that node long-polls are answered from:
// every channel's head and policy, and the per-view flips planned for each
// node. Its index changes only when its content does, so the frequent
// progress reports of nodes wake no long-poll unless they change a plan.
//
// A node that has reported is answered from nodes: only the channels its
// report names (its views' and its stored releases') and those whose warm
// selector its labels match (marked Warm), its flips, and the
// index at which that answer last changed. So a publish answers the nodes
// that hold the channel, not the whole fleet. A node that has not
// reported yet gets every channel, at the snapshot's index.
//
// A node that serves peers also gets the peer secret and the peers of the
// releases it must fetch (peers.go); those depend on which nodes hold or
// want what, never on bytes done, so progress reports leave its index.
type snapshot struct {
	index      uint64
	channels   []release.DesiredChannel
	views      map[string][]release.DesiredView
	nodes      map[string]nodeAnswer
	peerSecret string
}

// nodeAnswer is one reporting node's part of the snapshot.
type nodeAnswer struct {
	index    uint64
	channels []release.DesiredChannel
	views    []release.DesiredView
	// servesPeers: the node reports a peer address, so it is sent the
	// peer secret.
	servesPeers bool
	peers       []release.PeerSet
}

// nodeRefreshInterval spaces the refreshes that node reports set off.
// Reports land continuously from a large fleet, each one a change of the
// watched prefix, and a refresh reads every report; they change a plan
// only when a release becomes ready or a view moves, and the nodes report
// every few seconds anyway. Changes of channels and rollouts are not
// delayed.
const nodeRefreshInterval = 250 * time.Millisecond

// watchLoop keeps the snapshot current: one blocking watch on channels,
// one on node reports (and one on rollouts with Kubernetes); after a
// change the state is read once and the long-polls whose answer changed
// are woken.
func (m *Manager) watchLoop(ctx context.Context) {
	var chIdx, nodeIdx, rolloutIdx atomic.Uint64
	changes := make(chan struct{}, 1)
	nodeChanges := make(chan struct{}, 1)
	go m.watch(ctx, "channels", m.store.WatchChannels, &chIdx, changes)
	go m.watch(ctx, "nodes", m.store.WatchNodes, &nodeIdx, nodeChanges)
	if m.opts.Kube != nil {
		go m.watch(ctx, "rollouts", m.store.WatchRollouts, &rolloutIdx, changes)
	}
	var last time.Time
	for {
		select {
		case <-changes:
		case <-m.nodeLabelChanges:
		case <-nodeChanges:
			m.spaceNodeRefresh(ctx, last, changes)
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		last = time.Now()
		// The sum of growing indexes grows whenever any does.
		if err := m.refresh(ctx, chIdx.Load()+nodeIdx.Load()+rolloutIdx.Load()); err != nil && ctx.Err() == nil {
			m.logger().Error(err, "loading desired state; retrying")
			m.sleep(ctx, time.Second)
			signal(changes)
		}
	}
}

// spaceNodeRefresh waits until nodeRefreshInterval has passed since the
// last refresh, unless a channel change or the end of ctx comes first. It
// keeps wall time rather than the manager's clock: it only spaces out
// work, and a fake clock in tests must not hold refreshes back.
func (m *Manager) spaceNodeRefresh(ctx context.Context, last time.Time, changes <-chan struct{}) {
	wait := nodeRefreshInterval - time.Since(last)
	if wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-changes:
	case <-ctx.Done():
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
	m.kubeNodes.pruneDeleted(nodes)
	ids := identities{}
	desired := make([]release.DesiredChannel, 0, len(chans))
	for _, ch := range chans {
		desired = append(desired, release.DesiredChannel{
			Name: ch.Name, Head: ch.Head, Pinned: ch.Pinned, NodeKeep: ch.Config.NodeKeep, Paused: ch.Paused,
			HeadIdentity: m.identityOf(ctx, ids, ch.Name, ch.Head), PinnedIdentity: m.identityOf(ctx, ids, ch.Name, ch.Pinned),
			NodeQuota: ch.Config.NodeQuota,
		})
	}
	warm := warmChannels(chans, nodes, m.labelsOf)
	views, err := m.desiredViews(ctx, chans, nodes)
	if err != nil {
		return err
	}
	for _, vs := range views {
		for i, v := range vs {
			vs[i].ReleaseIdentity = m.identityOf(ctx, ids, v.Channel, v.Version)
		}
	}
	fresh := func(n release.NodeStatus) bool { return !m.stale(n) }
	peers := planPeers(peerInput{nodes: nodes, fresh: fresh, zone: m.zoneOf,
		channels: desired, views: views, warm: warm, lookup: func(channel, version string) (release.Identity, bool) {
			return m.releaseOf(ctx, ids, channel, version)
		}})
	m.metrics.observePeers(nodes, fresh)
	m.metrics.observeWarm(warm, nodes, desired, fresh)
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	if m.stopped {
		return nil
	}
	next, changed := nextSnapshot(m.snap, desired, views, nodes, peers, warm)
	next.peerSecret = m.peerSecret
	if m.ready && !changed {
		return nil
	}
	next.index = max(index, m.snap.index+1)
	for node, a := range next.nodes {
		if a.index == 0 {
			a.index = next.index
			next.nodes[node] = a
		}
	}
	m.snap = next
	m.ready = true
	close(m.changed)
	m.changed = make(chan struct{})
	m.metrics.snapshotIndex.Set(float64(m.snap.index))
	return nil
}

// nextSnapshot builds the snapshot of channels, views and node reports,
// and says whether any answer differs from prev's. Node answers that did
// not change keep their index; the others get index 0, for the caller to
// set.
func nextSnapshot(prev snapshot, channels []release.DesiredChannel, views map[string][]release.DesiredView, nodes []release.NodeStatus,
	peers map[string][]release.PeerSet, warm map[string]map[string]string) (snapshot, bool) {
	next := snapshot{channels: channels, views: views, nodes: make(map[string]nodeAnswer, len(nodes))}
	changed := !reflect.DeepEqual(prev.channels, channels) || !reflect.DeepEqual(prev.views, views) || len(prev.nodes) != len(nodes)
	for _, n := range nodes {
		a := nodeAnswer{channels: channelsOf(n, channels, warm[n.Node]), views: views[n.Node], servesPeers: n.Peer != nil, peers: peers[n.Node]}
		old, ok := prev.nodes[n.Node]
		if ok && slices.Equal(old.channels, a.channels) && slices.Equal(old.views, a.views) &&
			old.servesPeers == a.servesPeers && reflect.DeepEqual(old.peers, a.peers) {
			a.index = old.index
		} else {
			changed = true
		}
		next.nodes[n.Node] = a
	}
	return next, changed
}

// channelsOf picks, in order, the channels a node's report names and
// those it is warm for (warm: channel → medium), the latter with Warm set
// so that the node fetches their heads with no view.
func channelsOf(n release.NodeStatus, channels []release.DesiredChannel, warm map[string]string) []release.DesiredChannel {
	names := make(map[string]bool, len(n.Views)+len(n.Releases))
	for _, v := range n.Views {
		names[v.Channel] = true
	}
	for _, p := range n.Releases {
		names[p.Channel] = true
	}
	out := []release.DesiredChannel{}
	for _, ch := range channels {
		if medium, ok := warm[ch.Name]; ok {
			ch.Warm = medium
			out = append(out, ch)
		} else if names[ch.Name] {
			out = append(out, ch)
		}
	}
	return out
}

// warmChannels says, per reporting node, which channels it is warm for
// and on which medium: those whose warm selector its labels match
// (labelsOf: its Kubernetes Node's, else those it reports). Only channels
// with a warm config are looked at, so a fleet with none costs nothing.
func warmChannels(chans []release.Channel, nodes []release.NodeStatus, labelsOf func(release.NodeStatus) map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, ch := range chans {
		w := ch.Config.Warm
		if w == nil {
			continue
		}
		for _, n := range nodes {
			if !w.Matches(labelsOf(n)) {
				continue
			}
			if out[n.Node] == nil {
				out[n.Node] = map[string]string{}
			}
			out[n.Node][ch.Name] = w.MediumOrDefault()
		}
	}
	return out
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
			if v := mv.DesiredVersion(); v != "" {
				views[mv.Node] = append(views[mv.Node], release.DesiredView{VolumeID: mv.VolumeID, PodUID: mv.PodUID, Channel: r.Channel, Version: v})
			}
		}
	}
	return views, nil
}

// identities memoizes, within one refresh, the identity of each release
// the desired state names, by "channel/version", and whether it exists.
type identities map[string]knownRelease

type knownRelease struct {
	id     release.Identity
	exists bool
}

// identityOf is a release's identity from its record, so that a node tells
// it from an earlier release of the same name (release.Identity). A
// release that is gone meanwhile (or a failed read) gets the zero
// identity, with which a node takes what it has under the name, as nodes
// did before identities; the next refresh corrects it.
func (m *Manager) identityOf(ctx context.Context, ids identities, channel, version string) release.Identity {
	id, _ := m.releaseOf(ctx, ids, channel, version)
	return id
}

// releaseOf is identityOf that also says whether the release exists:
// only a store that says it does not makes it gone, not a failed read.
func (m *Manager) releaseOf(ctx context.Context, ids identities, channel, version string) (release.Identity, bool) {
	if version == "" {
		return release.Identity{}, false
	}
	key := channel + "/" + version
	if k, ok := ids[key]; ok {
		return k.id, k.exists
	}
	sum, err := m.store.GetRelease(ctx, channel, version)
	if err != nil {
		m.logger().V(2).Info("no identity for a release in the desired state", "channel", channel, "release", version, "err", err.Error())
	}
	ids[key] = knownRelease{id: sum.Identity(), exists: !errors.Is(err, store.ErrNotFound)}
	return ids[key].id, ids[key].exists
}
