package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
)

func nodeKey(node string) string { return prefixNodes + node }

// PutNodeStatus stores a node's latest report, replacing the previous one.
// Concurrent reports share a transaction (see reportBatcher).
func (s *Store) PutNodeStatus(ctx context.Context, st release.NodeStatus) error {
	if err := st.Validate(); err != nil {
		return err
	}
	val, err := encodeValue(st)
	if err != nil {
		return err
	}
	if limit := s.b.Limits().MaxValueSize; len(val) > limit {
		return fmt.Errorf("store: node %s: report of %d bytes exceeds the store's limit of %d", st.Node, len(val), limit)
	}
	return s.reports.put(ctx, s.b, nodeKey(st.Node), val)
}

// GetNodeStatus returns a node's last report.
func (s *Store) GetNodeStatus(ctx context.Context, node string) (release.NodeStatus, error) {
	kv, err := s.b.Get(ctx, nodeKey(node))
	if errors.Is(err, ErrNotFound) {
		return release.NodeStatus{}, fmt.Errorf("store: node %s: %w", node, ErrNotFound)
	}
	if err != nil {
		return release.NodeStatus{}, err
	}
	var st release.NodeStatus
	err = decodeValue(kv.Key, kv.Value, &st)
	return st, err
}

// ListNodeStatus returns every node's last report, sorted by node name.
// The manager lists the fleet's reports several times a second under
// load; a report whose version has not changed since the last list is
// not decoded again. Callers must not modify the slices of what it
// returns: they are shared with later calls.
func (s *Store) ListNodeStatus(ctx context.Context) ([]release.NodeStatus, error) {
	kvs, err := s.b.List(ctx, prefixNodes)
	if err != nil {
		return nil, err
	}
	s.nodesMu.Lock()
	prev := s.nodes
	s.nodesMu.Unlock()
	next := make(map[string]decodedReport, len(kvs))
	out := make([]release.NodeStatus, 0, len(kvs))
	for _, kv := range kvs {
		d, ok := prev[kv.Key]
		if !ok || d.version != kv.Version {
			d = decodedReport{version: kv.Version}
			if err := decodeValue(kv.Key, kv.Value, &d.status); err != nil {
				return nil, err
			}
		}
		next[kv.Key] = d
		out = append(out, d.status)
	}
	s.nodesMu.Lock()
	s.nodes = next
	s.nodesMu.Unlock()
	return out, nil
}

// decodedReport is a node report as last listed, with the version of its key.
type decodedReport struct {
	version uint64
	status  release.NodeStatus
}

// DeleteNodeStatus forgets a node (for example one removed from the
// cluster). It queues behind the node's pending report, if any, so that
// report cannot bring the node back.
func (s *Store) DeleteNodeStatus(ctx context.Context, node string) error {
	return s.reports.put(ctx, s.b, nodeKey(node), nil)
}
