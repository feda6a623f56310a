package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
)

func (a *app) nodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List the nodes' reports and forget a node that is gone",
		Args:  noArgs,
		RunE:  helpOnly,
	}
	cmd.AddCommand(a.nodeListCmd(), a.nodeForgetCmd())
	return cmd
}

func (a *app) nodeListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List every node's last report; stale ones no longer protect releases",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				nodes, err := cl.ListNodes(ctx)
				if err != nil {
					return err
				}
				if nodes == nil {
					nodes = []api.NodeReport{}
				}
				return a.render(api.NodeList{Nodes: nodes}, func(w io.Writer) { nodeReportTable(w, nodes) })
			})
		},
	}
}

// nodeReportTable has a row per node: when the manager last heard from
// it, whether that is stale, how much it reported, and for peer
// distribution where other nodes reach it ("-": it serves no peers), its
// zone as it reports it, and all it served to other nodes since its
// plugin started.
func nodeReportTable(w io.Writer, nodes []api.NodeReport) {
	if len(nodes) == 0 {
		fmt.Fprintln(w, "(no node has reported)")
		return
	}
	row(w, "NODE", "REPORTED", "STATE", "RELEASES", "VIEWS", "PEER", "ZONE", "SERVED")
	for _, n := range nodes {
		state := "live"
		if n.Stale {
			state = "stale"
		}
		peer, zone, served := "-", "-", "-"
		if n.Peer != nil {
			peer, zone, served = n.Peer.Address, orDash(n.Peer.Zone), humanBytes(n.PeerServedBytes)
		}
		row(w, n.Node, formatTime(n.ReportedAt), state, len(n.Releases), len(n.Views), peer, zone, served)
	}
}

func (a *app) nodeForgetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "forget NODE",
		Short: "Drop a gone node's report so its pods no longer hold releases or block channel deletion (admin)",
		Long: "Drop a node's last report. Its views stop protecting releases from retention and\n" +
			"stop blocking `hydra channel delete` at once, rather than when the report goes\n" +
			"stale (hydra-manager --node-report-ttl). For a node that is gone: a live node's\n" +
			"next report brings it back.",
		Args: exactArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				if err := cl.ForgetNode(ctx, args[0]); err != nil {
					return err
				}
				done := forgotten{Node: args[0], Forgotten: true}
				return a.render(done, func(w io.Writer) { fmt.Fprintf(w, "node %s forgotten\n", args[0]) })
			})
		},
	}
}

// forgotten is the JSON/YAML answer of `node forget`; the API returns no
// body.
type forgotten struct {
	Node      string `json:"node"`
	Forgotten bool   `json:"forgotten"`
}

// reportedCell is when a node last reported, marked when that is stale.
func reportedCell(n api.NodeProgress) string {
	if n.Stale {
		return formatTime(n.ReportedAt) + " (stale)"
	}
	return formatTime(n.ReportedAt)
}
