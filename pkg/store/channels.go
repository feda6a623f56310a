package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hydra-csi/hydra/pkg/release"
)

// channelRecord is a channel as stored: the public fields plus the counter
// that gives releases their publish order.
type channelRecord struct {
	release.Channel
	NextSeq uint64 `json:"nextSeq"`
	// History is the channel's head moves, written by the transaction of
	// each move.
	History release.History `json:"history"`
}

func channelKey(name string) string { return prefixChannels + name }

// CreateChannel stores a new channel; ErrExists if the name is taken. The
// caller fills defaults and timestamps; the channel is validated here too,
// since the store is the last line before bad state becomes durable.
func (s *Store) CreateChannel(ctx context.Context, ch release.Channel) (release.Channel, error) {
	if err := ch.Validate(); err != nil {
		return release.Channel{}, err
	}
	ch.Head, ch.Pinned, ch.ReleaseCount = "", "", 0
	val, err := encodeValue(channelRecord{Channel: ch})
	if err != nil {
		return release.Channel{}, err
	}
	key := channelKey(ch.Name)
	err = s.b.Txn(ctx, []Op{{Kind: OpPut, Key: key, Value: val, Cond: CondAbsent}})
	if conflictOn(err, key) {
		return release.Channel{}, fmt.Errorf("store: channel %s: %w", ch.Name, ErrExists)
	}
	return ch, err
}

// getChannel reads a channel record and its version.
func (s *Store) getChannel(ctx context.Context, name string) (channelRecord, uint64, error) {
	kv, err := s.b.Get(ctx, channelKey(name))
	if errors.Is(err, ErrNotFound) {
		return channelRecord{}, 0, fmt.Errorf("store: channel %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return channelRecord{}, 0, err
	}
	var rec channelRecord
	err = decodeValue(kv.Key, kv.Value, &rec)
	return rec, kv.Version, err
}

// GetChannel returns a channel with its release count.
func (s *Store) GetChannel(ctx context.Context, name string) (release.Channel, error) {
	rec, _, err := s.getChannel(ctx, name)
	if err != nil {
		return release.Channel{}, err
	}
	rels, err := s.b.List(ctx, releasePrefix(name))
	if err != nil {
		return release.Channel{}, err
	}
	rec.ReleaseCount = len(rels)
	return rec.Channel, nil
}

// ListChannels returns every channel, sorted by name, with release counts.
func (s *Store) ListChannels(ctx context.Context) ([]release.Channel, error) {
	kvs, err := s.b.List(ctx, prefixChannels)
	if err != nil {
		return nil, err
	}
	counts, err := s.releaseCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]release.Channel, 0, len(kvs))
	for _, kv := range kvs {
		var rec channelRecord
		if err := decodeValue(kv.Key, kv.Value, &rec); err != nil {
			return nil, err
		}
		rec.ReleaseCount = counts[rec.Name]
		out = append(out, rec.Channel)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) releaseCounts(ctx context.Context) (map[string]int, error) {
	kvs, err := s.b.List(ctx, prefixReleases)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, kv := range kvs {
		ch, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, prefixReleases), "/")
		counts[ch]++
	}
	return counts, nil
}

// UpdateChannel applies fn to the channel and stores the result by
// compare-and-swap, retrying on conflict (fn may run several times and must
// only depend on its argument). When fn moves Head or Pinned to a version,
// the same transaction checks that the release still exists, so the head
// can never point at a release that retention removed meanwhile. It
// returns the channel as committed.
func (s *Store) UpdateChannel(ctx context.Context, name string, fn func(*release.Channel) error) (release.Channel, error) {
	return s.updateChannel(ctx, name, false, func(st *ChannelState) error { return fn(st.Channel) })
}

// ChannelState is what UpdateChannelReleases hands its function: the
// channel and its head history to change, and the channel's releases in
// publish order as they stand at the version of the record being swapped.
type ChannelState struct {
	Channel  *release.Channel
	History  *release.History
	Releases []release.Summary
}

// UpdateChannelReleases is UpdateChannel for changes that depend on the
// release list (rollback, unpin, promote): the list is read after the
// channel record and the swap is conditional on that record, and every
// publish and every head move rewrites the record, so fn decides on a list
// and a head that no concurrent writer changed in between.
func (s *Store) UpdateChannelReleases(ctx context.Context, name string, fn func(*ChannelState) error) (release.Channel, error) {
	return s.updateChannel(ctx, name, true, fn)
}

func (s *Store) updateChannel(ctx context.Context, name string, withReleases bool, fn func(*ChannelState) error) (release.Channel, error) {
	for range maxCASAttempts {
		rec, version, err := s.getChannel(ctx, name)
		if err != nil {
			return release.Channel{}, err
		}
		st := &ChannelState{Channel: &rec.Channel, History: &rec.History}
		if withReleases {
			if st.Releases, err = s.listReleases(ctx, name); err != nil {
				return release.Channel{}, err
			}
		}
		before := rec.Channel
		if err := fn(st); err != nil {
			return release.Channel{}, err
		}
		rec.Name = name
		if err := rec.Validate(); err != nil {
			return release.Channel{}, err
		}
		ops, err := s.releaseChecks(ctx, name, before, rec.Channel)
		if err != nil {
			return release.Channel{}, err
		}
		val, err := encodeValue(rec)
		if err != nil {
			return release.Channel{}, err
		}
		ops = append(ops, Op{Kind: OpPut, Key: channelKey(name), Value: val, Cond: CondVersion, Version: version})
		err = s.b.Txn(ctx, ops)
		if conflictOn(err, channelKey(name)) {
			continue
		}
		if err != nil {
			var ce *ConflictError
			if errors.As(err, &ce) {
				return release.Channel{}, fmt.Errorf("store: channel %s: release removed while updating: %w", name, ErrNotFound)
			}
			return release.Channel{}, err
		}
		return s.committed(ctx, rec, st.Releases)
	}
	return release.Channel{}, fmt.Errorf("store: channel %s: gave up after %d conflicting updates: %w", name, maxCASAttempts, ErrConflict)
}

// committed is the channel as a swap stored it, with its release count
// (from rels when the update read them).
func (s *Store) committed(ctx context.Context, rec channelRecord, rels []release.Summary) (release.Channel, error) {
	if rels != nil {
		rec.ReleaseCount = len(rels)
		return rec.Channel, nil
	}
	kvs, err := s.b.List(ctx, releasePrefix(rec.Name))
	if err != nil {
		return release.Channel{}, err
	}
	rec.ReleaseCount = len(kvs)
	return rec.Channel, nil
}

// ChannelHistory returns a channel's head moves, oldest first.
func (s *Store) ChannelHistory(ctx context.Context, name string) ([]release.HeadMove, error) {
	rec, _, err := s.getChannel(ctx, name)
	return rec.History.Moves, err
}

// releaseChecks returns a check op for each release that after newly points
// at, or ErrNotFound when such a release does not exist.
func (s *Store) releaseChecks(ctx context.Context, name string, before, after release.Channel) ([]Op, error) {
	var ops []Op
	for _, pair := range [][2]string{{before.Head, after.Head}, {before.Pinned, after.Pinned}} {
		if pair[1] == "" || pair[1] == pair[0] {
			continue
		}
		kv, err := s.b.Get(ctx, releaseKey(name, pair[1]))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("store: release %s/%s: %w", name, pair[1], ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		ops = append(ops, Op{Kind: OpCheck, Key: kv.Key, Cond: CondVersion, Version: kv.Version})
	}
	return ops, nil
}

// DeleteChannel removes a channel with all its releases and manifests in one
// transaction. guard sees the channel as it is at delete time and may refuse
// (for example while volumes still use it).
func (s *Store) DeleteChannel(ctx context.Context, name string, guard func(release.Channel) error) error {
	for range maxCASAttempts {
		rec, version, err := s.getChannel(ctx, name)
		if err != nil {
			return err
		}
		if guard != nil {
			if err := guard(rec.Channel); err != nil {
				return err
			}
		}
		err = s.b.Txn(ctx, []Op{
			{Kind: OpDelete, Key: channelKey(name), Cond: CondVersion, Version: version},
			{Kind: OpDeleteTree, Key: releasePrefix(name)},
			{Kind: OpDeleteTree, Key: manifestPrefix(name)},
		})
		if conflictOn(err, channelKey(name)) {
			continue
		}
		return err
	}
	return fmt.Errorf("store: channel %s: gave up after %d conflicting deletes: %w", name, maxCASAttempts, ErrConflict)
}
