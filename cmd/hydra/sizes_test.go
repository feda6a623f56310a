package main

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestTallySaturates: publish --wait adds up the bytes of every node
// downloading; sixteen nodes at the 1 EiB bound would wrap an int64 to a
// negative total, shown as "-... B". The total saturates instead.
func TestTallySaturates(t *testing.T) {
	var st api.ChannelStatus
	for i := range 16 {
		st.Nodes = append(st.Nodes, api.NodeProgress{Node: fmt.Sprintf("node-%d", i), Releases: []release.Progress{
			{Channel: "web", Version: "v1", State: release.StateDownloading, BytesDone: release.MaxReleaseSize, BytesTotal: release.MaxReleaseSize},
		}})
	}
	tl := tally(st, "v1")
	if tl.bytesTotal != math.MaxInt64 || tl.bytesDone != math.MaxInt64 {
		t.Errorf("tally bytes %d/%d, want both %d", tl.bytesDone, tl.bytesTotal, int64(math.MaxInt64))
	}
	if line := tl.String(); strings.Contains(line, "-") {
		t.Errorf("progress line %q shows a negative size", line)
	}
}
