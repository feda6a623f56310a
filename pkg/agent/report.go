package agent

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// reportLoop sends the node's status: often while something changes,
// rarely when idle (so the manager knows the node is alive).
func (a *Agent) reportLoop(ctx context.Context) {
	var last release.NodeStatus
	var lastSent time.Time
	ticker := time.NewTicker(a.opts.ReportInterval)
	defer ticker.Stop()
	for {
		st, err := a.Status()
		if err == nil {
			changed := !reflect.DeepEqual(st.Releases, last.Releases) || !reflect.DeepEqual(st.Views, last.Views)
			if changed || time.Since(lastSent) >= a.opts.IdleReport {
				if err := a.opts.Client.ReportStatus(ctx, st); err != nil {
					if ctx.Err() == nil {
						a.metrics.errors.WithLabelValues("report").Inc()
						a.log().V(2).Info("report failed; will retry", "err", err.Error())
					}
				} else {
					last, lastSent = st, time.Now()
				}
			}
		}
		select {
		case <-ticker.C:
		case <-a.reportNow:
		case <-ctx.Done():
			return
		}
	}
}

// reportSoon asks for a report now rather than at the next tick.
func (a *Agent) reportSoon() {
	select {
	case a.reportNow <- struct{}{}:
	default:
	}
}

// identitiesOf are the identities the desired state names, by channel
// and version.
func identitiesOf(d release.Desired) map[[2]string]release.Identity {
	ids := map[[2]string]release.Identity{}
	for _, ch := range d.Channels {
		ids[[2]string{ch.Name, ch.Head}] = ch.HeadIdentity
		ids[[2]string{ch.Name, ch.Pinned}] = ch.PinnedIdentity
	}
	for _, dv := range d.Views {
		if !dv.ReleaseIdentity.IsZero() {
			ids[[2]string{dv.Channel, dv.Version}] = dv.ReleaseIdentity
		}
	}
	return ids
}

// Status is what the node reports: downloads in flight and failed, stored
// releases (ready), and its views.
func (a *Agent) Status() (release.NodeStatus, error) {
	st := release.NodeStatus{Node: a.opts.Node, ReportedAt: time.Now().UTC(), Releases: []release.Progress{}, Views: []release.View{},
		Peer: a.opts.Peer, Labels: a.opts.Labels}
	if a.opts.Served != nil {
		st.PeerServedBytes = a.opts.Served.ServedTotal()
	}
	views, err := a.opts.Views.List()
	if err != nil {
		return st, err
	}
	memViews, err := a.memoryViews()
	if err != nil {
		return st, err
	}
	views = append(views, memViews...)
	seen := map[string]bool{}
	for _, p := range a.opts.Cache.Progress() {
		st.Releases = append(st.Releases, p)
		seen[p.Channel+"/"+p.Version] = true
	}
	a.mu.Lock()
	for key, p := range a.failed {
		if !seen[key] {
			st.Releases = append(st.Releases, p)
			seen[key] = true
		}
	}
	// Downloads about to start, waiting for peers: the manager counts the
	// node in the release's swarm once it sees them.
	for key := range a.joining {
		if !seen[key] {
			channel, version, _ := strings.Cut(key, "/")
			st.Releases = append(st.Releases, release.Progress{Channel: channel, Version: version,
				State: release.StatePending, UpdatedAt: st.ReportedAt})
			seen[key] = true
		}
	}
	a.mu.Unlock()
	stored, err := a.opts.Cache.StoredReleases()
	if err != nil {
		return st, err
	}
	d, _ := a.Desired()
	desired := identitiesOf(d)
	for _, p := range stored {
		if seen[p.Channel+"/"+p.Version] {
			continue
		}
		// A copy of an earlier publish of the name the manager wants is not
		// the release it wants: reported ready, the rollout would move pods
		// to it before the node has it.
		if id := desired[[2]string{p.Channel, p.Version}]; !id.IsZero() && !a.opts.Cache.StoredAs(p.Channel, p.Version, id) {
			p.State, p.BytesDone = release.StatePending, 0
		}
		st.Releases = append(st.Releases, p)
	}
	for _, v := range views {
		st.Views = append(st.Views, release.View{
			VolumeID: v.VolumeID, PodUID: v.PodUID, PodName: v.PodName, PodNamespace: v.PodNamespace,
			Channel: v.Channel, Current: v.Current, Pinned: v.Pinned, Medium: v.Medium,
		})
	}
	if a.opts.Served != nil {
		for i, p := range st.Releases {
			st.Releases[i].BytesServed = a.opts.Served.Served(p.Channel, p.Version)
		}
	}
	sort.Slice(st.Releases, func(i, j int) bool {
		return st.Releases[i].Channel+"/"+st.Releases[i].Version < st.Releases[j].Channel+"/"+st.Releases[j].Version
	})
	a.metrics.setReleases(st.Releases)
	return st, nil
}
