package manager

import (
	"context"
	"fmt"
	"slices"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// CreateChannel creates a channel; zero config fields take their defaults.
func (m *Manager) CreateChannel(ctx context.Context, req api.CreateChannelRequest) (release.Channel, error) {
	now := m.now()
	ch := release.Channel{Name: req.Name, Config: req.Config.WithDefaults(), CreatedAt: now, UpdatedAt: now}
	if err := ch.Validate(); err != nil {
		return release.Channel{}, err
	}
	created, err := m.store.CreateChannel(ctx, ch)
	if err == nil {
		m.logger().Info("channel created", "channel", ch.Name)
	}
	return created, err
}

// ListChannels returns every channel.
func (m *Manager) ListChannels(ctx context.Context) ([]release.Channel, error) {
	return m.store.ListChannels(ctx)
}

// GetChannel returns a channel with its releases and status.
func (m *Manager) GetChannel(ctx context.Context, name string) (api.ChannelDetail, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return api.ChannelDetail{}, err
	}
	ch, err := m.store.GetChannel(ctx, name)
	if err != nil {
		return api.ChannelDetail{}, err
	}
	rels, err := m.store.ListReleases(ctx, name)
	if err != nil {
		return api.ChannelDetail{}, err
	}
	st, err := m.ChannelStatus(ctx, name)
	if err != nil {
		return api.ChannelDetail{}, err
	}
	return api.ChannelDetail{Channel: ch, Releases: rels, Status: st}, nil
}

// DeleteChannel removes a channel and its releases, refusing while any
// node reports a view (a mounted volume) of it.
func (m *Manager) DeleteChannel(ctx context.Context, name string) error {
	if err := release.ValidateChannelName(name); err != nil {
		return err
	}
	st, err := m.ChannelStatus(ctx, name)
	if err != nil {
		return err
	}
	// Views in stale reports do not count: their node may be gone.
	pods := slices.DeleteFunc(st.Pods, func(p api.PodView) bool { return p.Stale })
	err = m.store.DeleteChannel(ctx, name, func(release.Channel) error {
		if len(pods) > 0 {
			p := pods[0]
			return fmt.Errorf("manager: channel %s: %w by %d volume(s), e.g. %s on node %s; delete the workloads first (for a node that is gone: hydra node forget NODE)",
				name, ErrInUse, len(pods), p.VolumeID, p.Node)
		}
		return nil
	})
	if err == nil {
		m.logger().Info("channel deleted", "channel", name)
	}
	return err
}

// Pause stops rollouts of the channel, recording why.
func (m *Manager) Pause(ctx context.Context, name, reason string) (release.Channel, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return release.Channel{}, err
	}
	if reason == "" {
		reason = "paused by an operator"
	}
	return m.store.UpdateChannel(ctx, name, func(ch *release.Channel) error {
		m.touch(ch)
		ch.Paused, ch.PauseReason = true, reason
		return nil
	})
}

// Resume lets rollouts of the channel continue.
func (m *Manager) Resume(ctx context.Context, name string) (release.Channel, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return release.Channel{}, err
	}
	return m.store.UpdateChannel(ctx, name, func(ch *release.Channel) error {
		m.touch(ch)
		ch.Paused, ch.PauseReason = false, ""
		return nil
	})
}

func (m *Manager) touch(ch *release.Channel) { ch.UpdatedAt = m.now() }

func (m *Manager) countHeadMove(err error, cause string) {
	if err == nil {
		m.metrics.headMoves.WithLabelValues(cause).Inc()
	}
}

// validNames checks a channel name and, when set, a version.
func validNames(channel, version string) error {
	if err := release.ValidateChannelName(channel); err != nil {
		return err
	}
	if version == "" {
		return nil
	}
	return release.ValidateVersion(version)
}

// validRelease checks a channel name and a required version.
func validRelease(channel, version string) error {
	if err := release.ValidateChannelName(channel); err != nil {
		return err
	}
	return release.ValidateVersion(version)
}
