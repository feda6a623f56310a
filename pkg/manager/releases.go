package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Publish validates and stores a release of channel, moving the head to it
// unless req.NoPromote is set or the channel is pinned. publisher names the
// caller for the record.
func (m *Manager) Publish(ctx context.Context, channel, publisher string, req api.PublishRequest) (api.PublishResponse, error) {
	start := m.clock.Now()
	rel := release.Release{
		Channel:   channel,
		Version:   req.Version,
		CreatedAt: m.now(),
		Publisher: publisher,
		Datasets:  req.Datasets,
	}
	stored, promoted, err := m.store.PublishWith(ctx, rel, store.PublishOptions{
		Promote: !req.NoPromote, AllowDatasetChange: req.AllowDatasetChange,
	})
	m.metrics.publishes.WithLabelValues(publishResult(err)).Inc()
	if err != nil {
		return api.PublishResponse{}, err
	}
	m.metrics.publishSeconds.Observe(m.clock.Since(start).Seconds())
	if promoted {
		m.metrics.headMoves.WithLabelValues("publish").Inc()
	}
	ch, err := m.store.GetChannel(ctx, channel)
	if err != nil {
		return api.PublishResponse{}, err
	}
	m.logger().Info("release published", "channel", channel, "release", stored.Version,
		"seq", stored.Seq, "promoted", promoted, "publisher", publisher)
	return api.PublishResponse{Release: stored.Summarize(), Promoted: promoted, Head: ch.Head}, nil
}

func publishResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, release.ErrInvalid):
		return "invalid"
	case errors.Is(err, store.ErrExists):
		return "exists"
	case errors.Is(err, store.ErrNotFound):
		return "no_channel"
	}
	return "error"
}

// ListReleases returns a channel's releases in publish order.
func (m *Manager) ListReleases(ctx context.Context, channel string) ([]release.Summary, error) {
	if err := release.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	return m.store.ListReleases(ctx, channel)
}

// GetRelease returns one release's summary.
func (m *Manager) GetRelease(ctx context.Context, channel, version string) (release.Summary, error) {
	if err := validRelease(channel, version); err != nil {
		return release.Summary{}, err
	}
	return m.store.GetRelease(ctx, channel, version)
}

// GetManifest returns a release with its manifests.
func (m *Manager) GetManifest(ctx context.Context, channel, version string) (release.Release, error) {
	if err := validRelease(channel, version); err != nil {
		return release.Release{}, err
	}
	return m.store.GetManifest(ctx, channel, version)
}

// DeleteRelease removes a release that is not the head, not pinned and not
// in any view a node reports (a pod's current or pinned release); the
// store refuses the head and the pin inside the delete's transaction.
func (m *Manager) DeleteRelease(ctx context.Context, channel, version string) error {
	if err := validRelease(channel, version); err != nil {
		return err
	}
	st, err := m.ChannelStatus(ctx, channel)
	if err != nil {
		return err
	}
	err = m.store.DeleteRelease(ctx, channel, version, func(release.Channel) error {
		for _, p := range st.Pods {
			if p.Stale {
				continue // its node may be gone, as for channel deletion
			}
			if p.Current == version || p.Pinned == version || p.To == version {
				return fmt.Errorf("manager: release %s/%s: %w by volume %s on node %s", channel, version, ErrInUse, p.VolumeID, p.Node)
			}
		}
		return nil
	})
	if err == nil {
		m.logger().Info("release removed", "channel", channel, "release", version, "by", actor(ctx))
	}
	return err
}
