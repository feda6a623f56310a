package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestNodeCommands: `node ls` shows the reports, `node forget` drops one
// (admin only) and says so, and forgetting an unknown node fails.
func TestNodeCommands(t *testing.T) {
	h := newHarness(t)
	st := release.NodeStatus{Node: "node-a", Views: []release.View{{VolumeID: "pvc-1", Channel: "team-a", Current: "v1"}}}
	if err := h.node.ReportStatus(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	wantText(t, h.ok("node", "ls"), "NODE", "node-a", "live")
	var list api.NodeList
	decodeJSON(t, h.ok("-o", "json", "node", "ls"), &list)
	if len(list.Nodes) != 1 || list.Nodes[0].Node != "node-a" || list.Nodes[0].Stale || len(list.Nodes[0].Views) != 1 {
		t.Fatalf("node ls -o json = %+v, want node-a live with one view", list)
	}

	reader := h.sub(t)
	reader.env["HYDRA_TOKEN"] = readerToken
	reader.fails([]string{"node", "forget", "node-a"}, "may not administer")
	wantText(t, h.ok("node", "forget", "node-a"), "node node-a forgotten")
	wantText(t, h.ok("node", "ls"), "(no node has reported)")
	h.fails([]string{"node", "forget", "node-a"}, "not found")
	h.fails([]string{"node", "forget"}, "expected NODE")
}

// TestNodeTablesMarkStale: a stale report says so in `node ls` and in the
// NODES table of `status`.
func TestNodeTablesMarkStale(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	tw := newTable(&buf)
	nodeReportTable(tw, []api.NodeReport{{NodeStatus: release.NodeStatus{Node: "node-gone", ReportedAt: at}, Stale: true}})
	nodeTable(tw, []api.NodeProgress{{Node: "node-gone", ReportedAt: at, Stale: true,
		Releases: []release.Progress{{Channel: "c", Version: "v1", State: release.StateReady}}}})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	wantText(t, buf.String(), "node-gone  2026-01-01 00:00:00Z  stale", "2026-01-01 00:00:00Z (stale)")

	// The watch's frame marks it the same way, after the report's age.
	buf.Reset()
	tw = newTable(&buf)
	f := watchFrame{now: at.Add(15 * time.Minute)}
	f.nodeRows(tw, []api.NodeProgress{{Node: "node-gone", ReportedAt: at, Stale: true,
		Releases: []release.Progress{{Channel: "c", Version: "v1", State: release.StateReady}}}})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	wantText(t, buf.String(), "15m ago (stale)")
}
