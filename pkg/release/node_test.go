package release_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

func goodStatus() release.NodeStatus {
	return release.NodeStatus{
		Node: "ip-10-0-0-1.eu-west-1.compute.internal",
		Releases: []release.Progress{
			{Channel: "search-index", Version: "2019-12-15T00-00-00", State: release.StateReady, BytesDone: 10, BytesTotal: 10},
			{Channel: "search-index", Version: "2019-12-16T00-00-00", State: release.StateDownloading, BytesDone: 1, BytesTotal: 10},
		},
		Views: []release.View{
			{VolumeID: "vol-1", PodUID: "uid-1", Channel: "search-index", Current: "2019-12-15T00-00-00", Medium: "disk"},
			{VolumeID: "vol-2", Channel: "search-index", Current: "2019-12-15T00-00-00", Pinned: "2019-12-15T00-00-00"},
		},
		ReportedAt: time.Date(2019, 12, 16, 0, 0, 0, 0, time.UTC),
	}
}

func TestNodeStatusValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*release.NodeStatus)
		field  string // empty: must be accepted
		reason string
	}{
		{name: "good", mutate: func(*release.NodeStatus) {}},
		{name: "nothing to report", mutate: func(s *release.NodeStatus) { s.Releases, s.Views = nil, nil }},
		{name: "pending", mutate: func(s *release.NodeStatus) { s.Releases[0].State = release.StatePending }},
		{name: "failed with error", mutate: func(s *release.NodeStatus) { s.Releases[0].State, s.Releases[0].Error = release.StateFailed, "boom" }},
		{name: "failed for space", mutate: func(s *release.NodeStatus) {
			s.Releases[0].State, s.Releases[0].Error, s.Releases[0].ErrorKind = release.StateFailed, "full", release.ErrorKindNoSpace
		}},
		{name: "view not yet flipped", mutate: func(s *release.NodeStatus) { s.Views[0].Current = "" }},
		{name: "253-char node", mutate: func(s *release.NodeStatus) { s.Node = strings.Repeat("n", 253) }},
		{name: "256-char volume ID", mutate: func(s *release.NodeStatus) { s.Views[1].VolumeID = strings.Repeat("v", 256) }},
		{name: "max releases", mutate: func(s *release.NodeStatus) { s.Releases = progressN(release.MaxNodeEntries) }},
		{name: "empty node", mutate: func(s *release.NodeStatus) { s.Node = "" }, field: "node", reason: "1 to 253"},
		{name: "254-char node", mutate: func(s *release.NodeStatus) { s.Node = strings.Repeat("n", 254) }, field: "node", reason: "1 to 253"},
		{name: "upper-case node", mutate: func(s *release.NodeStatus) { s.Node = "Node-1" }, field: "node", reason: "DNS-1123"},
		{name: "node with slash", mutate: func(s *release.NodeStatus) { s.Node = "a/b" }, field: "node", reason: "DNS-1123"},
		{name: "node leading dash", mutate: func(s *release.NodeStatus) { s.Node = "-n" }, field: "node", reason: "start and end"},
		{name: "node trailing dot", mutate: func(s *release.NodeStatus) { s.Node = "n." }, field: "node", reason: "start and end"},
		{name: "too many releases", mutate: func(s *release.NodeStatus) { s.Releases = progressN(release.MaxNodeEntries + 1) }, field: "releases", reason: "at most 10000"},
		{name: "bad release channel", mutate: func(s *release.NodeStatus) { s.Releases[0].Channel = "Bad" }, field: "releases[0].channel"},
		{name: "bad release version", mutate: func(s *release.NodeStatus) { s.Releases[1].Version = "../x" }, field: "releases[1].version"},
		{name: "empty release version", mutate: func(s *release.NodeStatus) { s.Releases[1].Version = "" }, field: "releases[1].version"},
		{name: "unknown state", mutate: func(s *release.NodeStatus) { s.Releases[1].State = "done" }, field: "releases[1].state", reason: "must be pending"},
		{name: "empty state", mutate: func(s *release.NodeStatus) { s.Releases[0].State = "" }, field: "releases[0].state"},
		{name: "upper-case state", mutate: func(s *release.NodeStatus) { s.Releases[0].State = "Ready" }, field: "releases[0].state"},
		{name: "bytesTotal over 1 EiB", mutate: func(s *release.NodeStatus) { s.Releases[1].BytesTotal = release.MaxReleaseSize + 1 }, field: "releases[1].bytesTotal", reason: "1 EiB"},
		{name: "bytesDone of the largest int64", mutate: func(s *release.NodeStatus) { s.Releases[0].BytesDone = math.MaxInt64 }, field: "releases[0].bytesDone", reason: "1 EiB"},
		{name: "negative bytesDone", mutate: func(s *release.NodeStatus) { s.Releases[1].BytesDone = -1 }, field: "releases[1].bytesDone", reason: "must not be negative"},
		{name: "empty volume ID", mutate: func(s *release.NodeStatus) { s.Views[0].VolumeID = "" }, field: "views[0].volumeID", reason: "1 to 256"},
		{name: "257-char volume ID", mutate: func(s *release.NodeStatus) { s.Views[1].VolumeID = strings.Repeat("v", 257) }, field: "views[1].volumeID"},
		{name: "bad view channel", mutate: func(s *release.NodeStatus) { s.Views[1].Channel = "a_b" }, field: "views[1].channel"},
		{name: "empty view channel", mutate: func(s *release.NodeStatus) { s.Views[0].Channel = "" }, field: "views[0].channel"},
		{name: "pod name and namespace", mutate: func(s *release.NodeStatus) { s.Views[0].PodName, s.Views[0].PodNamespace = "web-0", "shop" }},
		{name: "memory medium", mutate: func(s *release.NodeStatus) { s.Views[0].Medium = "memory" }},
		{name: "escape in pod name", mutate: func(s *release.NodeStatus) { s.Views[0].PodName = "web\x1b[2J" }, field: "views[0].podName", reason: "control or bidirectional"},
		{name: "RLO in pod namespace", mutate: func(s *release.NodeStatus) { s.Views[1].PodNamespace = "shop\u202e" }, field: "views[1].podNamespace", reason: "control or bidirectional"},
		{name: "C1 CSI in pod UID", mutate: func(s *release.NodeStatus) { s.Views[0].PodUID = "uid\u009b2J" }, field: "views[0].podUID", reason: "control or bidirectional"},
		{name: "newline in volume ID", mutate: func(s *release.NodeStatus) { s.Views[0].VolumeID = "vol\nforged" }, field: "views[0].volumeID", reason: "control or bidirectional"},
		{name: "64-char pod namespace", mutate: func(s *release.NodeStatus) { s.Views[0].PodNamespace = strings.Repeat("n", 64) }, field: "views[0].podNamespace", reason: "at most 63"},
		{name: "254-char pod name", mutate: func(s *release.NodeStatus) { s.Views[0].PodName = strings.Repeat("p", 254) }, field: "views[0].podName", reason: "at most 253"},
		{name: "unknown medium", mutate: func(s *release.NodeStatus) { s.Views[0].Medium = "tape\x1b" }, field: "views[0].medium", reason: "disk"},
		{name: "bad release wins over bad view", mutate: func(s *release.NodeStatus) { s.Releases[1].State, s.Views[0].VolumeID = "x", "" }, field: "releases[1].state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := goodStatus()
			tc.mutate(&s)
			checkErr(t, s.Validate(), tc.field, tc.reason)
		})
	}
}

// TestNodeStatusLooseFieldNames covers refusals whose field path is not
// pinned exactly: the rule must fire and point into the right entry.
// TestNodeStatusFieldNames pins the field each bad report entry is named by.
func TestNodeStatusFieldNames(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*release.NodeStatus)
		fieldPrefix string
		exact       bool
	}{
		{name: "bad current", mutate: func(s *release.NodeStatus) { s.Views[1].Current = ".x" }, fieldPrefix: "views[1].current", exact: true},
		{name: "bad pinned", mutate: func(s *release.NodeStatus) { s.Views[0].Pinned = "a/b" }, fieldPrefix: "views[0].pinned", exact: true},
		{name: "negative bytesTotal", mutate: func(s *release.NodeStatus) { s.Releases[1].BytesTotal = -1 }, fieldPrefix: "releases[1].bytesTotal", exact: true},
		{name: "unknown errorKind", mutate: func(s *release.NodeStatus) { s.Releases[0].ErrorKind = "Full" }, fieldPrefix: "releases[0].errorKind", exact: true},
		{name: "too many views", mutate: func(s *release.NodeStatus) { s.Views = make([]release.View, release.MaxNodeEntries+1) }, fieldPrefix: "views", exact: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := goodStatus()
			tc.mutate(&s)
			err := s.Validate()
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("Validate() = %v, want an error wrapping ErrInvalid", err)
			}
			var fe *release.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, tc.fieldPrefix) || (tc.exact && fe.Field != tc.fieldPrefix) {
				t.Errorf("Validate() = %v, want a FieldError under %q", err, tc.fieldPrefix)
			}
		})
	}
}

func progressN(n int) []release.Progress {
	ps := make([]release.Progress, n)
	for i := range ps {
		ps[i] = release.Progress{Channel: "c", Version: "v1", State: release.StatePending}
	}
	return ps
}

// TestVolumeID pins the ID format CreateVolume gives a PV's volume.
func TestVolumeID(t *testing.T) {
	if got, want := release.VolumeID("search-index", "pvc-1"), "hydra-search-index-"; !strings.HasPrefix(got, want) || len(got) != len(want)+16 {
		t.Errorf("VolumeID = %q, want %s and 16 hex digits", got, want)
	}
	if release.VolumeID("c", "pvc-1") == release.VolumeID("c", "pvc-2") {
		t.Error("two PV names give one volume ID")
	}
}
