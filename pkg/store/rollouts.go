package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
)

func rolloutKey(channel string) string { return prefixRollouts + channel }

// GetRollout returns a channel's moves in flight and the record's version
// for SaveRollout; a channel with none has an empty Rollout and version 0.
func (s *Store) GetRollout(ctx context.Context, channel string) (release.Rollout, uint64, error) {
	kv, err := s.b.Get(ctx, rolloutKey(channel))
	if errors.Is(err, ErrNotFound) {
		return release.Rollout{Channel: channel}, 0, nil
	}
	if err != nil {
		return release.Rollout{}, 0, err
	}
	var r release.Rollout
	if err := decodeValue(kv.Key, kv.Value, &r); err != nil {
		return release.Rollout{}, 0, err
	}
	return r, kv.Version, nil
}

// ListRollouts returns every channel's moves in flight, by channel.
func (s *Store) ListRollouts(ctx context.Context) ([]release.Rollout, error) {
	kvs, err := s.b.List(ctx, prefixRollouts)
	if err != nil {
		return nil, err
	}
	out := make([]release.Rollout, 0, len(kvs))
	for _, kv := range kvs {
		var r release.Rollout
		if err := decodeValue(kv.Key, kv.Value, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// SaveRollout replaces a channel's record if it is still at version (0:
// absent), which keeps a deposed leader from overwriting its successor's
// work: it gets ErrConflict. A rollout without moves deletes the record.
func (s *Store) SaveRollout(ctx context.Context, r release.Rollout, version uint64) error {
	if err := r.Validate(); err != nil {
		return err
	}
	key := rolloutKey(r.Channel)
	op := Op{Kind: OpDelete, Key: key, Cond: CondVersion, Version: version}
	if len(r.Moves) > 0 {
		val, err := encodeValue(r)
		if err != nil {
			return err
		}
		if limit := s.b.Limits().MaxValueSize; len(val) > limit {
			return fmt.Errorf("store: rollout of %s: record of %d bytes exceeds the store's limit of %d", r.Channel, len(val), limit)
		}
		op = Op{Kind: OpPut, Key: key, Value: val, Cond: CondVersion, Version: version}
	}
	if version == 0 {
		op.Cond = CondAbsent
		if op.Kind == OpDelete {
			return nil // nothing stored, nothing to delete
		}
	}
	return s.b.Txn(ctx, []Op{op})
}
