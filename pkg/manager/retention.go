package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Removal is one release retention removed, and why.
type Removal struct {
	Channel, Version, Reason string
}

// ApplyRetention removes, in every channel, the releases beyond the newest
// Keep and those older than MaxAge — never the head, the pinned release, or
// a release that a node reports serving (in a report younger than
// NodeReportTTL). It returns what it removed.
func (m *Manager) ApplyRetention(ctx context.Context) ([]Removal, error) {
	chans, err := m.store.ListChannels(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := m.store.ListNodeStatus(ctx)
	if err != nil {
		return nil, err
	}
	used := m.inUse(nodes)
	var removed []Removal
	var errs []error
	for _, ch := range chans {
		r, err := m.retainChannel(ctx, ch, used[ch.Name])
		removed = append(removed, r...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

func (m *Manager) retainChannel(ctx context.Context, ch release.Channel, used map[string]bool) ([]Removal, error) {
	rels, err := m.store.ListReleases(ctx, ch.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	var removed []Removal
	for _, c := range retentionCandidates(ch, rels, m.now()) {
		if used[c.Version] {
			continue
		}
		err := m.store.DeleteRelease(ctx, ch.Name, c.Version, func(now release.Channel) error {
			if now.Config.Keep != ch.Config.Keep || now.Config.MaxAge != ch.Config.MaxAge {
				return errConfigChanged
			}
			return nil
		})
		switch {
		case err == nil:
			removed = append(removed, c)
			m.metrics.retained.WithLabelValues(c.Reason).Inc()
			m.logger().Info("retention removed release", "channel", ch.Name, "release", c.Version, "reason", c.Reason)
		case errors.Is(err, store.ErrProtected), errors.Is(err, store.ErrNotFound), errors.Is(err, errConfigChanged):
			// The head moved onto it, someone else removed it, or the
			// policy changed: the next pass decides again.
		default:
			return removed, fmt.Errorf("manager: retention of %s/%s: %w", ch.Name, c.Version, err)
		}
	}
	return removed, nil
}

var errConfigChanged = errors.New("retention policy changed during the pass")

// Reasons of a Removal (the label of hydra_manager_retention_deleted_total).
const (
	reasonKeep   = "keep"
	reasonMaxAge = "max-age"
)

// retentionCandidates is the pure policy: releases (in publish order) past
// the newest Keep, or older than MaxAge, excluding the head and the pinned
// release. Whether a node uses one is checked by the caller.
func retentionCandidates(ch release.Channel, rels []release.Summary, now time.Time) []Removal {
	var out []Removal
	for i, r := range rels {
		newer := len(rels) - 1 - i
		if r.Version == ch.Head || r.Version == ch.Pinned {
			continue
		}
		switch {
		case newer >= ch.Config.Keep:
			out = append(out, Removal{Channel: ch.Name, Version: r.Version, Reason: reasonKeep})
		case ch.Config.MaxAge.Duration > 0 && now.Sub(r.CreatedAt) > ch.Config.MaxAge.Duration:
			out = append(out, Removal{Channel: ch.Name, Version: r.Version, Reason: reasonMaxAge})
		}
	}
	return out
}
