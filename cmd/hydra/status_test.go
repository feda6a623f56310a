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
