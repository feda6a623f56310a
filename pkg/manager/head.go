package manager

import (
	"context"
	"fmt"
	"slices"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Every head move decides inside the compare-and-swap of the channel
// record (store.UpdateChannelReleases): the release list, the head and the
// history it reads are those of the record it replaces, so concurrent
// publishes, pins, unpins and rollbacks end as some serial order of them
// would, and none fails because another moved first.

type actorKey struct{}

// WithActor returns ctx carrying the identity that asks for a change; head
// moves record it in the channel's history.
func WithActor(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, actorKey{}, id)
}

func actor(ctx context.Context) string {
	id, _ := ctx.Value(actorKey{}).(string)
	return id
}

// moveHead runs decide inside the channel's compare-and-swap and records
// the move it makes under cause.
func (m *Manager) moveHead(ctx context.Context, name, cause string, decide func(st *store.ChannelState) (undoes uint64, err error)) (release.Channel, error) {
	by := actor(ctx)
	ch, err := m.store.UpdateChannelReleases(ctx, name, func(st *store.ChannelState) error {
		before := *st.Channel
		undoes, err := decide(st)
		if err != nil {
			return err
		}
		now := m.now()
		if _, moved := st.History.Record(before, *st.Channel, now, by, cause); moved {
			st.History.Moves[len(st.History.Moves)-1].Undoes = undoes
			st.Channel.UpdatedAt = now
		}
		return nil
	})
	metricCause := cause
	if cause == release.CausePromote {
		metricCause = "set"
	}
	m.countHeadMove(err, metricCause)
	if err == nil {
		m.logger().Info("head moved", "channel", name, "cause", cause, "head", ch.Head, "pinned", ch.Pinned, "by", by)
	}
	return ch, err
}

// SetHead points the channel's head at version (hydra promote).
func (m *Manager) SetHead(ctx context.Context, name, version string) (release.Channel, error) {
	if err := validRelease(name, version); err != nil {
		return release.Channel{}, err
	}
	return m.moveHead(ctx, name, release.CausePromote, func(st *store.ChannelState) (uint64, error) {
		if p := st.Channel.Pinned; p != "" && p != version {
			return 0, fmt.Errorf("manager: channel %s: %w to %s; unpin it first", name, ErrPinned, p)
		}
		st.Channel.Head = version
		return 0, nil
	})
}

// Rollback moves the head back: to version to, or when to is empty, to
// where it was before the newest head move that no rollback undid yet —
// so the head only ever returns to a release that was the head.
func (m *Manager) Rollback(ctx context.Context, name, to string) (release.Channel, error) {
	if err := validNames(name, to); err != nil {
		return release.Channel{}, err
	}
	return m.moveHead(ctx, name, release.CauseRollback, func(st *store.ChannelState) (uint64, error) {
		if p := st.Channel.Pinned; p != "" {
			return 0, fmt.Errorf("manager: channel %s: %w to %s; unpin it first", name, ErrPinned, p)
		}
		if to != "" {
			st.Channel.Head = to
			return 0, nil
		}
		mv, err := undoTarget(name, st)
		if err != nil {
			return 0, err
		}
		st.Channel.Head = mv.From
		return mv.ID, nil
	})
}

// undoTarget is the move a plain rollback undoes.
func undoTarget(channel string, st *store.ChannelState) (release.HeadMove, error) {
	mv, ok := st.History.Undoable()
	switch {
	case !ok:
		return mv, fmt.Errorf("manager: channel %s: %w: no head move to undo; name one with --to", channel, ErrNoRelease)
	case mv.From == "":
		return mv, fmt.Errorf("manager: channel %s: %w: %s was the first head, nothing was before it", channel, ErrNoRelease, mv.To)
	case !hasRelease(st.Releases, mv.From):
		return mv, fmt.Errorf("manager: channel %s: %w: the previous head %s was removed; name a release with --to", channel, ErrNoRelease, mv.From)
	}
	return mv, nil
}

func hasRelease(rels []release.Summary, version string) bool {
	return version != "" && slices.ContainsFunc(rels, func(r release.Summary) bool { return r.Version == version })
}

// Pin holds the head at version until Unpin.
func (m *Manager) Pin(ctx context.Context, name, version string) (release.Channel, error) {
	if err := validRelease(name, version); err != nil {
		return release.Channel{}, err
	}
	return m.moveHead(ctx, name, release.CausePin, func(st *store.ChannelState) (uint64, error) {
		st.Channel.Head, st.Channel.Pinned = version, version
		return 0, nil
	})
}

// Unpin releases the pin. The head moves to the newest release published
// with promotion while pinned (it would be the head had there been no
// pin), else back to the head before the pin; a release published with
// --no-promote never becomes the head this way.
func (m *Manager) Unpin(ctx context.Context, name string) (release.Channel, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return release.Channel{}, err
	}
	return m.moveHead(ctx, name, release.CauseUnpin, func(st *store.ChannelState) (uint64, error) {
		if st.Channel.Pinned == "" {
			return 0, nil
		}
		st.Channel.Pinned = ""
		for _, v := range []string{st.History.PromotedWhilePinned, st.History.PinnedFrom} {
			if hasRelease(st.Releases, v) {
				st.Channel.Head = v
				break
			}
		}
		return 0, nil
	})
}

// History returns a channel's head moves, oldest first.
func (m *Manager) History(ctx context.Context, name string) ([]release.HeadMove, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return nil, err
	}
	return m.store.ChannelHistory(ctx, name)
}
