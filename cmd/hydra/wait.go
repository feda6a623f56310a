package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// waitAfterPublish is `publish --wait`. Nodes only download the head, so a
// release that was not promoted has nothing to wait for.
func (a *app) waitAfterPublish(ctx context.Context, cl *client.Client, resp api.PublishResponse) error {
	r := resp.Release
	if !resp.Promoted {
		fmt.Fprintf(a.progress(), "%s is not the head of %s; nodes will not download it, nothing to wait for\n", safe(r.Version), safe(r.Channel))
		return nil
	}
	return a.waitRollout(ctx, cl, r.Channel, r.Version)
}

// waitRollout polls the channel's status until every node that reports the
// channel has version ready, printing a progress line per poll. A node that
// reports the release failed ends the wait with its error.
func (a *app) waitRollout(ctx context.Context, cl *client.Client, channel, version string) error {
	out := a.progress()
	for {
		st, err := a.channelStatus(ctx, cl, channel)
		if err != nil {
			return err
		}
		t := tally(st, version)
		switch {
		case t.nodes == 0:
			fmt.Fprintf(out, "no node reports channel %s; nothing to wait for\n", channel)
			return nil
		case len(t.failed) > 0:
			return t.failure(version)
		}
		fmt.Fprintf(out, "%s: %s\n", version, t)
		if t.ready == t.nodes {
			return nil
		}
		if !a.sleep(ctx, a.pollInterval) {
			return fmt.Errorf("waiting for %s: %d/%d nodes ready: %w", version, t.ready, t.nodes, ctx.Err())
		}
	}
}

func (a *app) channelStatus(ctx context.Context, cl *client.Client, channel string) (api.ChannelStatus, error) {
	ctx, cancel := a.request(ctx)
	defer cancel()
	return cl.ChannelStatus(ctx, channel)
}

// rolloutTally counts the nodes of a channel by their state of one release.
type rolloutTally struct {
	nodes, ready, downloading, pending int
	bytesDone, bytesTotal              int64
	failed                             []failedNode
}

type failedNode struct{ node, err string }

// tally reads a status for version. A node that reports the channel but
// not yet this release has not picked it up: it counts as pending.
func tally(st api.ChannelStatus, version string) rolloutTally {
	var t rolloutTally
	for _, n := range st.Nodes {
		t.nodes++
		p, ok := progressOf(n, version)
		switch {
		case !ok || p.State == release.StatePending:
			t.pending++
		case p.State == release.StateReady:
			t.ready++
		case p.State == release.StateFailed:
			t.failed = append(t.failed, failedNode{node: n.Node, err: p.Error})
		default:
			t.downloading++
			t.bytesDone = release.AddSizes(t.bytesDone, p.BytesDone) // no wrap to "-2 B"
			t.bytesTotal = release.AddSizes(t.bytesTotal, p.BytesTotal)
		}
	}
	return t
}

func progressOf(n api.NodeProgress, version string) (release.Progress, bool) {
	for _, p := range n.Releases {
		if p.Version == version {
			return p, true
		}
	}
	return release.Progress{}, false
}

// String is the progress line: "1/3 nodes ready, 1 downloading [##...] ..., 1 pending".
func (t rolloutTally) String() string {
	parts := []string{fmt.Sprintf("%d/%d nodes ready", t.ready, t.nodes)}
	if t.downloading > 0 {
		parts = append(parts, fmt.Sprintf("%d downloading %s", t.downloading, progressBar(t.bytesDone, t.bytesTotal)))
	}
	if t.pending > 0 {
		parts = append(parts, fmt.Sprintf("%d pending", t.pending))
	}
	return strings.Join(parts, ", ")
}

func (t rolloutTally) failure(version string) error {
	f := t.failed[0]
	msg := fmt.Sprintf("release %s failed on node %s: %s", version, f.node, orDash(f.err))
	if more := len(t.failed) - 1; more > 0 {
		msg += fmt.Sprintf(" (and on %d more nodes; see hydra status)", more)
	}
	return fmt.Errorf("%s", msg)
}
