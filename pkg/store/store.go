// Package store keeps the manager's state — channels, releases, manifests
// and node reports — over a small key-value Backend with compare-and-swap
// transactions. Two backends exist: an embedded bbolt file (the default, for
// one replica) and Consul KV (for several replicas).
//
// Key layout (relative to the backend's root):
//
//	channels/<channel>                          channel record (config, head, pin, next seq, head history)
//	releases/<channel>/<version>                release record (summary + manifest reference)
//	manifests/<channel>/<version>/<blob>/<n>    gzip'd JSON manifests, chunked to the backend's value limit
//	nodes/<node>                                the node's last status report
//
// Every change to a channel's head goes through a CAS on its record, so
// concurrent publishers never lose a release or corrupt the head.
package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
)

// Key prefixes of the layout.
const (
	prefixChannels  = "channels/"
	prefixReleases  = "releases/"
	prefixManifests = "manifests/"
	prefixNodes     = "nodes/"
	prefixRollouts  = "rollouts/"
	leaderName      = "manager"
)

// maxCASAttempts bounds a compare-and-swap retry loop. Each failed attempt
// means another writer succeeded, so the system as a whole progresses; the
// bound only stops a pathological livelock from spinning forever.
const maxCASAttempts = 1000

// Store is Hydra's state over a Backend.
type Store struct {
	b       Backend
	reports reportBatcher

	nodesMu sync.Mutex
	nodes   map[string]decodedReport // by key, from the last ListNodeStatus

	manifests manifestCache
}

// New lays the store out over an open backend.
func New(b Backend) *Store { return &Store{b: b} }

// Open opens the store a URL names:
//
//	bolt:///var/lib/hydra-manager/state.db
//	consul://127.0.0.1:8500/hydra        (token from CONSUL_HTTP_TOKEN)
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: bad URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "bolt":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("store: bad URL %q: want bolt:///ABSOLUTE/PATH", rawURL)
		}
		b, err := OpenBolt(u.Path)
		if err != nil {
			return nil, err
		}
		return New(b), nil
	case "consul":
		if u.Host == "" {
			return nil, fmt.Errorf("store: bad URL %q: want consul://HOST:PORT/PREFIX", rawURL)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix == "" {
			prefix = "hydra"
		}
		b, err := OpenConsul(ctx, u.Host, prefix, "")
		if err != nil {
			return nil, err
		}
		return New(b), nil
	}
	return nil, fmt.Errorf("store: bad URL %q: scheme must be bolt or consul", rawURL)
}

// Backend returns the engine under the store (for tests and health checks).
func (s *Store) Backend() Backend { return s.b }

// Ping checks that the backend answers.
func (s *Store) Ping(ctx context.Context) error { return s.b.Ping(ctx) }

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

// Campaign blocks until this replica leads the background loops.
func (s *Store) Campaign(ctx context.Context) (Leadership, error) {
	return s.b.Campaign(ctx, leaderName)
}

// WatchChannels blocks until any channel record changes after index and
// returns the new index (see Backend.Wait).
func (s *Store) WatchChannels(ctx context.Context, after uint64) (uint64, error) {
	return s.b.Wait(ctx, prefixChannels, after)
}

// WatchNodes is WatchChannels for node reports.
func (s *Store) WatchNodes(ctx context.Context, after uint64) (uint64, error) {
	return s.b.Wait(ctx, prefixNodes, after)
}

// WatchRollouts is WatchChannels for the rollout controller's records.
func (s *Store) WatchRollouts(ctx context.Context, after uint64) (uint64, error) {
	return s.b.Wait(ctx, prefixRollouts, after)
}

// Values larger than compressAbove are gzip'd; gzip's magic byte 0x1f can
// never start a JSON document, so decode tells the two apart.
const compressAbove = 32 << 10

func encodeValue(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil || len(raw) <= compressAbove {
		return raw, err
	}
	return gzipBytes(raw)
}

func decodeValue(key string, raw []byte, v any) error {
	if len(raw) > 0 && raw[0] == 0x1f {
		var err error
		if raw, err = gunzipBytes(raw); err != nil {
			return fmt.Errorf("store: key %q: %w", key, err)
		}
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("store: key %q: corrupt value: %w", key, err)
	}
	return nil
}

func gzipBytes(raw []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func gunzipBytes(raw []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// conflictOn reports whether err is a CAS conflict on key.
func conflictOn(err error, key string) bool {
	var ce *ConflictError
	return errors.As(err, &ce) && ce.Key == key
}
