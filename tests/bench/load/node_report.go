package main

import (
	"cmp"
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// reportLoop reports every reportInterval while the status changes and
// every idleReport otherwise; the first report registers the node. The
// first tick is spread at random so the fleet does not report in step.
func (n *node) reportLoop(ctx context.Context) {
	var last release.NodeStatus
	var lastSent time.Time
	sleep(ctx, rand.N(reportInterval)) //nolint:gosec // G404: spreading timers, no secret
	ticker := time.NewTicker(reportInterval)
	defer ticker.Stop()
	for {
		st := n.status()
		changed := !reflect.DeepEqual(st.Releases, last.Releases) || !reflect.DeepEqual(st.Views, last.Views)
		if changed || time.Since(lastSent) >= idleReport {
			err := n.rec.time(ctx, kindReport, func() error { return n.cl.ReportStatus(ctx, st) })
			if err == nil {
				last, lastSent = st, time.Now()
				n.registered()
			}
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

func (n *node) registered() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.regDone {
		n.regDone = true
		n.maybeReady()
	}
}

// status is the report pkg/agent sends: every release stored or on its
// way (with its bytes so far), sorted, and every view.
func (n *node) status() release.NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	st := release.NodeStatus{Node: n.name, ReportedAt: now.UTC(), Releases: []release.Progress{}, Views: []release.View{}}
	for _, ch := range n.channels {
		for _, p := range n.releases[ch] {
			q := *p
			if start, ok := n.started[ch+"/"+q.Version]; ok && n.download > 0 {
				frac := min(1, float64(now.Sub(start))/float64(n.download))
				q.BytesDone = int64(frac * float64(q.BytesTotal))
			}
			st.Releases = append(st.Releases, q)
		}
		st.Views = append(st.Views, *n.views[ch])
	}
	slices.SortFunc(st.Releases, func(a, b release.Progress) int {
		return cmp.Or(strings.Compare(a.Channel, b.Channel), strings.Compare(a.Version, b.Version))
	})
	return st
}
