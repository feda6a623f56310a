package agent

import (
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestWantedReleasesCarryIdentities: a wanted head, pin or flip target is
// wanted as the publish the desired state names, so a copy of an earlier
// release of the name does not count as stored.
func TestWantedReleasesCarryIdentities(t *testing.T) {
	head := release.Identity{Seq: 3, CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
	pin := release.Identity{Seq: 1, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := release.Desired{
		Channels: []release.DesiredChannel{
			{Name: "c", Head: "v3", HeadIdentity: head, Pinned: "v1", PinnedIdentity: pin},
			{Name: "old-manager", Head: "v9"},
			{Name: "unused", Head: "v1", HeadIdentity: head},
		},
		Views: []release.DesiredView{{VolumeID: "vol", PodUID: "p1", Channel: "c", Version: "v3", ReleaseIdentity: head}},
	}
	views := []cache.ViewInfo{
		{ViewRecord: cache.ViewRecord{VolumeID: "vol", PodUID: "p1", Channel: "c"}, Current: "v2"},
		{ViewRecord: cache.ViewRecord{VolumeID: "vol2", PodUID: "p2", Channel: "c", Pinned: "v1"}, Current: "v1"},
		{ViewRecord: cache.ViewRecord{VolumeID: "vol3", PodUID: "p3", Channel: "old-manager"}, Current: "v8"},
	}
	got := map[string]release.Identity{}
	for _, w := range wantedReleases(views, d) {
		got[w.channel+"/"+w.version] = w.id
	}
	for _, tc := range []struct {
		release string
		id      release.Identity
	}{
		{"c/v3", head},
		{"c/v1", pin},
		{"old-manager/v9", release.Identity{}}, // a manager that sends none: any copy
	} {
		id, ok := got[tc.release]
		if !ok || id != tc.id {
			t.Errorf("%s: wanted %t with identity %s, want identity %s", tc.release, ok, id, tc.id)
		}
	}
	if len(got) != 3 {
		t.Errorf("wanted %v; want c/v3, c/v1 and old-manager/v9 only (no view uses unused)", got)
	}
}
