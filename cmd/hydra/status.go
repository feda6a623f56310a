package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

func (a *app) statusCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "status CHANNEL",
		Short: "Show per-node download progress, per-pod releases and warm nodes of a channel",
		Args:  exactArgs("CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client(cmd)
			if err != nil {
				return err
			}
			if watch {
				return a.watchStatus(cmd.Context(), cl, args[0])
			}
			return a.showStatus(cmd.Context(), cl, args[0])
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow per-node progress and per-pod state, redrawn every 2s until interrupted (Ctrl-C)")
	return cmd
}

// showStatus fetches and prints the status once. It reads the channel
// detail rather than /status, which answers an empty status for a channel
// that does not exist; the detail says "not found" and carries the head.
func (a *app) showStatus(ctx context.Context, cl *client.Client, channel string) error {
	d, err := a.channelDetail(ctx, cl, channel)
	if err != nil {
		return err
	}
	return a.render(d.Status, func(w io.Writer) {
		headLine(w, d.Channel)
		fmt.Fprintln(w)
		statusTables(w, d.Status)
		warmSection(w, d)
	})
}

func (a *app) channelDetail(ctx context.Context, cl *client.Client, channel string) (api.ChannelDetail, error) {
	ctx, cancel := a.request(ctx)
	defer cancel()
	return cl.GetChannel(ctx, channel)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// sleep waits d on the app's clock and reports false if ctx ended first.
func (a *app) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-a.clock.After(d):
		return true
	}
}

// statusTables prints the NODES and PODS tables of a channel status.
func statusTables(w io.Writer, st api.ChannelStatus) {
	fmt.Fprintln(w, "NODES")
	if len(st.Nodes) == 0 {
		fmt.Fprintln(w, "(no node reports this channel)")
	} else {
		nodeTable(w, st.Nodes)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "PODS")
	if len(st.Pods) == 0 {
		fmt.Fprintln(w, "(no pod serves this channel)")
		return
	}
	podTable(w, st.Pods)
}

// nodeTable has a row per node and release, newest release first. FROM
// PEERS and FROM ORIGIN split what the node fetched of the release by
// where it came from, SERVED is what it sent of it to other nodes (peer
// distribution); all three count since the node's plugin started.
func nodeTable(w io.Writer, nodes []api.NodeProgress) {
	row(w, "NODE", "RELEASE", "STATE", "PROGRESS", "FROM PEERS", "FROM ORIGIN", "SERVED", "REPORTED", "ERROR")
	for _, n := range nodes {
		rels := append([]release.Progress(nil), n.Releases...)
		sort.SliceStable(rels, func(i, j int) bool { return rels[i].UpdatedAt.After(rels[j].UpdatedAt) })
		for _, p := range rels {
			row(w, n.Node, p.Version, p.State, progressBar(p.BytesDone, p.BytesTotal),
				humanBytes(p.BytesFromPeers), humanBytes(p.BytesFromOrigin), humanBytes(p.BytesServed), reportedCell(n), orDash(p.Error))
		}
	}
}

func podTable(w io.Writer, pods []api.PodView) {
	row(w, "POD", "NODE", "RELEASE", "PINNED", "MEDIUM", "ROLLOUT")
	for _, p := range pods {
		rollout := "-"
		if p.Phase != "" {
			rollout = fmt.Sprintf("%s to %s", p.Phase, p.To)
		}
		row(w, podName(p), p.Node, orDash(p.Current), orDash(p.Pinned), orDash(p.Medium), rollout)
	}
}

// podName is namespace/name, or the volume ID for a view whose node did
// not learn the pod's identity.
func podName(p api.PodView) string {
	if p.PodName == "" {
		return "volume " + p.VolumeID
	}
	return p.PodNamespace + "/" + p.PodName
}
