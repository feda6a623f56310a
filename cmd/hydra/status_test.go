package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

const gib = int64(1) << 30

// report sends a node report as the node agent would.
func (h *harness) report(node string, progress []release.Progress, views ...release.View) {
	h.t.Helper()
	st := release.NodeStatus{Node: node, Releases: progress, Views: views}
	if err := h.node.ReportStatus(h.t.Context(), st); err != nil {
		h.t.Fatalf("report status of %s: %v", node, err)
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t)
	h.createChannel("web")
	h.publishStub("web", "v1", false)
	now := time.Now().UTC()
	h.report("node-a", []release.Progress{
		{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: gib, BytesTotal: gib, UpdatedAt: now.Add(-time.Minute)},
		// 52% of 2.3 GiB.
		{Channel: "web", Version: "v2", State: release.StateDownloading, BytesDone: 1288490189, BytesTotal: 2469606195, UpdatedAt: now},
		{Channel: "other", Version: "x1", State: release.StateReady, UpdatedAt: now},
	}, release.View{VolumeID: "vol-1", PodUID: "uid-1", PodName: "web-0", PodNamespace: "shop", Channel: "web", Current: "v1", Medium: "disk"})
	h.report("node-b", []release.Progress{
		{Channel: "web", Version: "v2", State: release.StateFailed, Error: "checksum mismatch on a.bin", UpdatedAt: now},
	})

	out := h.ok("status", "web")
	wantText(t, out, "channel web: head v1", "NODE", "node-a", "v2", "downloading",
		"[#####.....] 52% 1.2 GiB/2.3 GiB", "node-b", "failed", "checksum mismatch on a.bin",
		"shop/web-0", "PINNED", "disk")
	if strings.Contains(out, "x1") {
		t.Errorf("status of web shows another channel's release:\n%s", out)
	}

	var st api.ChannelStatus
	decodeJSON(t, h.ok("-o", "json", "status", "web"), &st)
	if len(st.Nodes) != 2 || len(st.Pods) != 1 || st.Pods[0].PodName != "web-0" || st.Pods[0].Node != "node-a" {
		t.Errorf("status -o json = %+v", st)
	}

	h.fails([]string{"status", "nope"}, "channel nope", "not found")
	h.fails([]string{"status"}, "status: expected CHANNEL, got no arguments")
}

// TestStatusPeerBytes: `status` shows per node and release the bytes
// fetched from peers and from the origin and those served, `node ls` each
// node's peer address, zone and all it served ("-" for a node that serves
// no peers), in human units; JSON carries the numbers as reported.
func TestStatusPeerBytes(t *testing.T) {
	h := newHarness(t)
	h.createChannel("web")
	h.publishStub("web", "v1", true)
	now := time.Now().UTC()
	st := release.NodeStatus{Node: "node-a", Peer: &release.PeerInfo{Address: "10.0.0.7:7470", Zone: "eu-1a"}, PeerServedBytes: 3 * gib,
		Releases: []release.Progress{{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: 2 * gib, BytesTotal: 2 * gib,
			BytesFromPeers: 1536 << 20, BytesFromOrigin: 512 << 20, BytesServed: 3 * gib, UpdatedAt: now}}}
	if err := h.node.ReportStatus(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	h.report("node-b", []release.Progress{{Channel: "web", Version: "v1", State: release.StateDownloading, BytesDone: 1, BytesTotal: 2, UpdatedAt: now}})

	wantText(t, h.ok("status", "web"), "FROM PEERS  FROM ORIGIN  SERVED",
		"[##########] 100% 2.0 GiB/2.0 GiB  1.5 GiB     512.0 MiB    3.0 GiB", "0 B         0 B          0 B")
	var cs api.ChannelStatus
	decodeJSON(t, h.ok("-o", "json", "status", "web"), &cs)
	var got release.Progress
	for _, n := range cs.Nodes {
		if n.Node == "node-a" && len(n.Releases) == 1 {
			got = n.Releases[0]
		}
	}
	if got.BytesFromPeers != 1536<<20 || got.BytesFromOrigin != 512<<20 || got.BytesServed != 3*gib {
		t.Errorf("status -o json: node-a's v1 = %+v, want the bytes as reported", got)
	}

	wantText(t, h.ok("node", "ls"), "PEER           ZONE   SERVED", "10.0.0.7:7470  eu-1a  3.0 GiB", "0      -              -      -")
	var list api.NodeList
	decodeJSON(t, h.ok("-o", "json", "node", "ls"), &list)
	for _, n := range list.Nodes {
		if n.Node == "node-a" && (n.Peer == nil || n.Peer.Address != "10.0.0.7:7470" || n.Peer.Zone != "eu-1a" || n.PeerServedBytes != 3*gib) {
			t.Errorf("node ls -o json: node-a = %+v / %+v, want its peer and served bytes", n.NodeStatus, n.Peer)
		}
	}
}
