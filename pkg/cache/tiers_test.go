package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestTiers: what the CSI node and the agent share. A release is ensured
// on a medium with the caller's manifest (whose error comes back as it
// is), a view is linked to a stored release and flipped to another, and a
// release that is not stored is refused with ErrNotStored before anything
// is linked. Without a RAM tier, the memory medium is stored nowhere and
// refused by Ensure.
func TestTiers(t *testing.T) {
	e := newS3Env(t)
	e.put(t, "t1/a", bytes.NewReader(content("t1", 4096)), "")
	e.put(t, "t2/a", bytes.NewReader(content("t2", 4096)), "")
	rels := map[string]release.Release{
		"v1": e.publish(t, "tier", "v1", 1, map[string]string{"d": "t1/"}),
		"v2": e.publish(t, "tier", "v2", 2, map[string]string{"d": "t2/"}),
	}
	disk := e.newCache(t, t.TempDir())
	tiers := cache.Tiers{Disk: disk, DiskViews: cache.NewViews(disk.Layout())}
	errManager := errors.New("manager away")
	manifest := func(_ context.Context, channel, version string) (release.Release, error) {
		rel, ok := rels[version]
		if !ok {
			return rel, fmt.Errorf("%s/%s: %w", channel, version, errManager)
		}
		return rel, nil
	}
	ctx := t.Context()

	for _, tc := range []struct {
		name, medium, version string
		want                  error  // errors.Is
		wantText              string // in the message
	}{
		{"disk", release.MediumDisk, "v1", nil, ""},
		{"the manifest's error", release.MediumDisk, "v9", errManager, "tier/v9"},
		{"no RAM tier", release.MediumMemory, "v1", nil, "release tier/v1: no memory tier"},
	} {
		err := tiers.Ensure(ctx, tc.medium, "tier", tc.version, nil, manifest)
		switch {
		case tc.want == nil && tc.wantText == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.wantText)
		}
	}
	if !tiers.StoredAs(release.MediumDisk, "tier", "v1", rels["v1"].Identity()) || tiers.StoredAs(release.MediumMemory, "tier", "v1", release.Identity{}) {
		t.Fatal("v1 should be stored on disk only")
	}
	if tiers.Views(release.MediumMemory) != tiers.DiskViews {
		t.Error("without a RAM tier, the memory medium's views are the disk's")
	}

	spec := cache.ViewRecord{VolumeID: "vol", PodUID: "pod", Channel: "tier", Medium: release.MediumDisk}
	if _, err := tiers.Link(spec, "v2"); !errors.Is(err, cache.ErrNotStored) {
		t.Fatalf("link to a release not stored: %v, want ErrNotStored", err)
	}
	if _, err := tiers.DiskViews.Get("vol", "pod"); !errors.Is(err, cache.ErrNoView) {
		t.Fatalf("a refused link left a view: %v", err)
	}
	info, err := tiers.Link(spec, "v1")
	if err != nil || info.Current != "v1" {
		t.Fatalf("link v1: %+v, %v", info, err)
	}
	if _, err := tiers.Flip(release.MediumDisk, info, "v2"); !errors.Is(err, cache.ErrNotStored) {
		t.Fatalf("flip to a release not stored: %v, want ErrNotStored", err)
	}
	if err := tiers.Ensure(ctx, release.MediumDisk, "tier", "v2", nil, manifest); err != nil {
		t.Fatal(err)
	}
	if info, err = tiers.Flip(release.MediumDisk, info, "v2"); err != nil || info.Current != "v2" {
		t.Fatalf("flip to v2: %+v, %v", info, err)
	}
	if got, err := tiers.DiskViews.Get("vol", "pod"); err != nil || got.Current != "v2" || len(got.Releases) != 1 {
		t.Fatalf("after the flip the view shows %q with trees %v (%v), want v2 alone", got.Current, got.Releases, err)
	}
}
