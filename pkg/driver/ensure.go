package driver

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// ensure resolves the release a volume serves and makes it present in the
// volume's tier, readable with creds; it returns the version and which
// publish of it (zero when the manager could not say).
func (d *Driver) ensure(ctx context.Context, attrs volumeAttrs, creds *source.Credentials) (string, release.Identity, error) {
	version, id, err := d.resolve(ctx, attrs)
	if err != nil {
		return "", id, err
	}
	if err := d.present(ctx, attrs, version, id, creds); err != nil {
		return "", id, err
	}
	return version, id, nil
}

// pinLookupTimeout bounds the wait for a pinned release's identity.
const pinLookupTimeout = 3 * time.Second

// resolve returns the pinned release, or the channel's head, with its
// identity (release.Identity: a copy on the node of an earlier release of
// the same name is not the one asked for). When the manager cannot be
// reached, the newest release of the channel already on the node serves
// (the node keeps serving what it has; the agent flips the view to the
// head once the manager is back), and a pin is taken as stored.
func (d *Driver) resolve(ctx context.Context, attrs volumeAttrs) (string, release.Identity, error) {
	cl, err := d.clientFor(attrs.Manager)
	if err != nil {
		return "", release.Identity{}, err
	}
	if attrs.Version != "" {
		// A pin needed no manager before identities: an unreachable one
		// costs a stage at most pinLookupTimeout, then the pin is taken as
		// stored.
		lookupCtx, cancel := context.WithTimeout(ctx, pinLookupTimeout)
		defer cancel()
		sum, err := cl.GetRelease(lookupCtx, attrs.Channel, attrs.Version)
		if err != nil {
			klog.FromContext(ctx).V(4).Info("No identity for a pinned release; taking what the node has under its name",
				"channel", attrs.Channel, "release", attrs.Version, "err", err.Error())
		}
		return attrs.Version, sum.Identity(), nil
	}
	detail, err := cl.GetChannel(ctx, attrs.Channel)
	switch {
	case client.IsNotFound(err):
		return "", release.Identity{}, fmt.Errorf("driver: channel %q: %w: the manager does not know it", attrs.Channel, errNotFound)
	case err != nil && codeOf(err) == codes.Unavailable:
		if v := d.newestStored(attrs.Channel); v != "" {
			klog.FromContext(ctx).Info("Manager unreachable; serving the newest release on the node", "channel", attrs.Channel, "release", v, "err", err.Error())
			return v, release.Identity{}, nil
		}
		return "", release.Identity{}, fmt.Errorf("driver: channel %q: head: %w", attrs.Channel, err)
	case err != nil:
		return "", release.Identity{}, fmt.Errorf("driver: channel %q: head: %w", attrs.Channel, err)
	case detail.Channel.Head == "":
		return "", release.Identity{}, fmt.Errorf("driver: channel %q: %w: it has no release yet", attrs.Channel, errNotFound)
	}
	return detail.Channel.Head, headIdentity(detail), nil
}

// headIdentity finds the head's identity among the channel's releases.
func headIdentity(detail api.ChannelDetail) release.Identity {
	for _, s := range detail.Releases {
		if s.Version == detail.Channel.Head {
			return s.Identity()
		}
	}
	return release.Identity{}
}

// newestStored is the channel's most recently created release in the
// disk store, or "".
func (d *Driver) newestStored(channel string) string {
	stored, err := d.opts.Cache.StoredReleases()
	if err != nil {
		return ""
	}
	var best release.Progress
	for _, p := range stored {
		if p.Channel == channel && (best.Version == "" || p.UpdatedAt.After(best.UpdatedAt)) {
			best = p
		}
	}
	return best.Version
}

// present makes a release present in the medium's tier, downloaded with
// creds when it is not (nil: the node's credentials), and proves that
// creds can read it whoever downloaded it (cache.Tiers.Authorize): through
// the node agent for the default manager (one download however many
// callers), or with the manifest of the volume's own manager.
func (d *Driver) present(ctx context.Context, attrs volumeAttrs, version string, id release.Identity, creds *source.Credentials) error {
	if d.tiers.StoredAs(attrs.Medium, attrs.Channel, version, id) {
		return d.authorize(ctx, attrs, version, creds)
	}
	if attrs.Medium == release.MediumDisk && attrs.Manager == "" && d.opts.Agent != nil {
		return d.opts.Agent.Ensure(ctx, attrs.Channel, version, creds)
	}
	return d.tiers.Ensure(ctx, attrs.Medium, attrs.Channel, version, creds, d.manifestFrom(attrs))
}

// authorize proves that creds can read a stored release
// (cache.Tiers.Authorize), with the volume's manager's manifest when the
// disk copy is gone (a RAM copy outlives it).
func (d *Driver) authorize(ctx context.Context, attrs volumeAttrs, version string, creds *source.Credentials) error {
	return d.tiers.Authorize(ctx, attrs.Channel, version, creds, d.manifestFrom(attrs))
}

// manifestFrom asks the volume's manager for a release's manifest.
func (d *Driver) manifestFrom(attrs volumeAttrs) cache.ManifestFunc {
	return func(ctx context.Context, channel, version string) (release.Release, error) {
		cl, err := d.clientFor(attrs.Manager)
		if err != nil {
			return release.Release{}, err
		}
		rel, err := cl.GetManifest(ctx, channel, version)
		if client.IsNotFound(err) {
			return rel, fmt.Errorf("driver: release %s/%s: %w: the manager does not know it", channel, version, errNotFound)
		}
		if err != nil {
			return rel, fmt.Errorf("driver: manifest of %s/%s: %w", channel, version, err)
		}
		return rel, nil
	}
}
