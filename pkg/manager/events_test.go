package manager

import (
	"slices"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestWarnedDownloads feeds a sequence of node reports to one
// warnedDownloads and checks which failures each step tells: once per
// node, release and error, however often reports repeat it or the node
// retries, and again only after the node got past it.
func TestWarnedDownloads(t *testing.T) {
	failed := func(version, err string, kind release.ErrorKind) release.Progress {
		return release.Progress{Channel: "c", Version: version, State: release.StateFailed, Error: err, ErrorKind: kind}
	}
	state := func(version string, s release.State) release.Progress {
		return release.Progress{Channel: "c", Version: version, State: s}
	}
	report := func(node string, ps ...release.Progress) release.NodeStatus {
		return release.NodeStatus{Node: node, Releases: ps}
	}
	steps := []struct {
		name  string
		nodes []release.NodeStatus
		want  []string // reason node version
	}{
		{"first failure on two nodes", []release.NodeStatus{
			report("a", failed("v2", "object changed", "")), report("b", failed("v2", "object changed", "")),
		}, []string{"DownloadFailed a v2", "DownloadFailed b v2"}},
		{"the same reports again", []release.NodeStatus{
			report("a", failed("v2", "object changed", "")), report("b", failed("v2", "object changed", "")),
		}, nil},
		{"a retries: downloading", []release.NodeStatus{
			report("a", state("v2", release.StateDownloading)), report("b", failed("v2", "object changed", "")),
		}, nil},
		{"a's retry fails the same way", []release.NodeStatus{
			report("a", failed("v2", "object changed", "")), report("b", failed("v2", "object changed", "")),
		}, nil},
		{"a fails another way", []release.NodeStatus{
			report("a", failed("v2", "S3 unreachable", "")), report("b", failed("v2", "object changed", "")),
		}, []string{"DownloadFailed a v2"}},
		{"b runs out of space; its numbers change on each retry", []release.NodeStatus{
			report("a", failed("v2", "S3 unreachable", "")), report("b", failed("v2", "needs 10 bytes, 5 free", release.ErrorKindNoSpace)),
		}, []string{"InsufficientSpace b v2"}},
		{"b's next space error", []release.NodeStatus{
			report("a", failed("v2", "S3 unreachable", "")), report("b", failed("v2", "needs 10 bytes, 4 free", release.ErrorKindNoSpace)),
		}, nil},
		{"a gets v2; b drops it for v3 (head moved)", []release.NodeStatus{
			report("a", state("v2", release.StateReady)), report("b", state("v3", release.StatePending)),
		}, nil},
		{"v2 fails again on both: a new episode, told again", []release.NodeStatus{
			report("a", failed("v2", "S3 unreachable", "")), report("b", failed("v2", "needs 10 bytes, 4 free", release.ErrorKindNoSpace)),
		}, []string{"DownloadFailed a v2", "InsufficientSpace b v2"}},
		{"a failure without a message is not told", []release.NodeStatus{
			report("c", failed("v2", "", "")),
		}, nil},
	}
	w := warnedDownloads{}
	for _, st := range steps {
		var got []string
		for _, d := range w.update(st.nodes) {
			got = append(got, d.reason+" "+d.node+" "+d.version)
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("%s: told %q, want %q", st.name, got, st.want)
		}
	}
}

func TestWarningOf(t *testing.T) {
	d := warningOf("node-a", release.Progress{Channel: "c", Version: "v2", State: release.StateFailed,
		Error: "s3://data/x: object changed since publish"})
	if d.reason != eventDownloadFailed || d.message != "c: node node-a cannot download v2: s3://data/x: object changed since publish" {
		t.Errorf("warningOf(other) = %+v", d)
	}
	d = warningOf("node-a", release.Progress{Channel: "c", Version: "v2", State: release.StateFailed,
		Error: "cache: release c/v2 needs 9 more bytes, 1 free under /var/lib/hydra: not enough space for the release", ErrorKind: release.ErrorKindNoSpace})
	if d.reason != eventInsufficientSpace || d.message != "c: node node-a has no room for v2: cache: release c/v2 needs 9 more bytes, 1 free under /var/lib/hydra: not enough space for the release" {
		t.Errorf("warningOf(no space) = %+v", d)
	}
	// A node's error text reaches kubectl as the Event says it: its
	// escape sequences and bidi controls are escaped.
	d = warningOf("node-a", release.Progress{Channel: "c", Version: "v2", State: release.StateFailed,
		Error: "s3://data/x: \x1b]0;owned\x07 gone \u202eevil"})
	if want := `c: node node-a cannot download v2: s3://data/x: \x1b]0;owned\x07 gone \u202eevil`; d.message != want {
		t.Errorf("warningOf(control characters) message %q, want %q", d.message, want)
	}
}
