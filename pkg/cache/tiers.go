package cache

import (
	"context"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// ManifestFunc returns the manifest of channel/version from a manager. Its
// errors are the caller's own (the CSI node maps them to gRPC codes).
type ManifestFunc func(ctx context.Context, channel, version string) (release.Release, error)

// Tiers is the node's logic over its releases: a release made present on
// a tier (the disk store, or the RAM tier), proved readable with a
// volume's credentials, held while a view's tree is linked to it, and a
// view created or flipped to it. The CSI node service (NodeStageVolume,
// NodePublishVolume) and the node agent (background downloads, flips)
// both go through it.
//
// Tiers keeps no state and no lock of its own: a zero-cost value over the
// tiers' stores. The locks live where the state does: the disk store
// single-flights downloads and credential proofs per release and keeps a
// refcounted hold per release (Cache.Hold) that retention respects; the
// RAM tier locks per release (Memory.EnsureFor); Views locks per view.
// Concurrent calls on one volume are refused above this, by the CSI
// node's in-flight set per volume ID; the agent flips from its one
// reconcile loop.
type Tiers struct {
	// Disk and DiskViews are the disk store and the views built from it.
	Disk      *Cache
	DiskViews *Views
	// Memory and MemoryViews are the RAM tier and its views; nil without
	// one.
	Memory      *Memory
	MemoryViews *Views
}

// Views returns the views of a medium's tier; the disk tier's when the
// node has no RAM tier.
func (t Tiers) Views(medium string) *Views {
	if medium == release.MediumMemory && t.MemoryViews != nil {
		return t.MemoryViews
	}
	return t.DiskViews
}

// StoredAs reports whether the publish id names (zero: any) is present in
// the medium's tier under version.
func (t Tiers) StoredAs(medium, channel, version string, id release.Identity) bool {
	if version == "" {
		return false
	}
	if medium == release.MediumMemory {
		return t.Memory != nil && t.Memory.StoredAs(channel, version, id)
	}
	return t.Disk.StoredAs(channel, version, id)
}

// Ensure makes channel/version present in the medium's tier, readable
// with creds (nil: the node's own): its manifest from manifest, its bytes
// through the tier (one download however many callers; the RAM tier
// copies the disk tier's, downloading it first when needed).
func (t Tiers) Ensure(ctx context.Context, medium, channel, version string, creds *source.Credentials, manifest ManifestFunc) error {
	if medium == release.MediumMemory && t.Memory == nil {
		return fmt.Errorf("cache: release %s/%s: no memory tier on this node", channel, version)
	}
	rel, err := manifest(ctx, channel, version)
	if err != nil {
		return err
	}
	if medium == release.MediumMemory {
		return t.Memory.EnsureFor(ctx, rel, creds)
	}
	return t.Disk.EnsureFor(ctx, rel, creds)
}

// Authorize proves that creds (nil: the node's own) read the release
// channel/version (Cache.Authorize): answered from memory once proved, and
// without loading the manifest when no proof is needed (Cache.Authorized).
// The manifest is the one recorded in the disk store or, when the disk
// copy is gone (a RAM copy outlives it) and manifest is not nil, the
// manager's.
func (t Tiers) Authorize(ctx context.Context, channel, version string, creds *source.Credentials, manifest ManifestFunc) error {
	if t.Disk.Authorized(channel, version, creds) {
		return nil
	}
	rel, err := t.Disk.Manifest(channel, version)
	if errors.Is(err, ErrNotStored) && manifest != nil {
		rel, err = manifest(ctx, channel, version)
	}
	if err != nil {
		return err
	}
	return t.Disk.Authorize(ctx, rel, creds)
}

// Link creates the view spec describes (or finds it: Views.Create is
// idempotent) showing version, held while its tree is linked. The error
// wraps ErrNotStored when the release is not in the tier.
func (t Tiers) Link(spec ViewRecord, version string) (ViewInfo, error) {
	done, err := t.hold(spec.Medium, spec.Channel, version)
	if err != nil {
		return ViewInfo{}, err
	}
	defer done()
	return t.Views(spec.Medium).Create(spec, version)
}

// Flip points the view v of the medium's tier at version, held while its
// tree is linked, and prunes the trees the view no longer shows.
func (t Tiers) Flip(medium string, v ViewInfo, version string) (ViewInfo, error) {
	done, err := t.hold(medium, v.Channel, version)
	if err != nil {
		return ViewInfo{}, err
	}
	defer done()
	views := t.Views(medium)
	info, err := views.Flip(v.VolumeID, v.PodUID, version)
	if err == nil {
		err = views.Prune(v.VolumeID, v.PodUID)
	}
	return info, err
}

// hold keeps a release from retention and eviction while a view's tree
// is linked to it (Cache.Hold, Memory.Hold). The RAM tier's retention
// removes only releases no memory view uses or is moving to; its holds
// are for eviction.
func (t Tiers) hold(medium, channel, version string) (func(), error) {
	hold := t.Disk.Hold
	if medium == release.MediumMemory {
		if t.Memory == nil {
			return func() {}, nil
		}
		hold = t.Memory.Hold
	}
	done, err := hold(channel, version)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrNotStored)
	}
	return done, nil
}
