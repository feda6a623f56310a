package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Hold marks a stored release as in use (a view is being built from it)
// until the returned func is called; Retain never removes a held release.
// It fails when the release is not stored.
func (c *Cache) Hold(channel, version string) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.Stored(channel, version) {
		return nil, fmt.Errorf("cache: release %s/%s is not stored", channel, version)
	}
	key := flightKey(channel, version)
	c.holds[key]++
	c.useGen++ // eviction reads what is needed again (evict.go)
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.useGen++
		if c.holds[key]--; c.holds[key] <= 0 {
			delete(c.holds, key)
		}
	}, nil
}

// Retain keeps the newest keep releases of a channel in store/ (by publish
// order), plus every release in protect (the head, a pin, what views
// use) and every held one, and removes the rest. It returns the removed
// versions.
func (c *Cache) Retain(channel string, keep int, protect map[string]bool) ([]string, error) {
	versions, err := c.storedVersions(channel)
	if err != nil {
		return nil, err
	}
	seqs := map[string]uint64{}
	for _, v := range versions {
		if rel, err := c.readMeta(channel, v); err == nil {
			seqs[v] = rel.Seq
		}
	}
	sort.Slice(versions, func(i, j int) bool { return seqs[versions[i]] > seqs[versions[j]] })
	var removed []string
	var errs []error
	for i, v := range versions {
		if i < keep || protect[v] {
			continue
		}
		ok, err := c.remove(channel, v, removedRetention)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, v)
		}
	}
	return removed, errors.Join(errs...)
}

// remove deletes one stored release unless it is held, counting it under
// reason (removeIf with no condition).
func (c *Cache) remove(channel, version, reason string) (bool, error) {
	return c.removeIf(channel, version, reason, nil)
}

// removeIf deletes one stored release unless it is held or check (run
// under c.mu; nil: none) refuses, counting it under reason.
//  1. Under c.mu, rename the tree out of store/ into tmp/.trash, so no one
//     ever sees a half-deleted release, and remove its record and mark
//     from meta/ (a crash between leaves a record without a release,
//     which nothing reads: every reader starts from store/).
//  2. Delete the renamed tree, outside c.mu (New empties tmp/.trash
//     should a crash interrupt it).
func (c *Cache) removeIf(channel, version, reason string, check func() error) (bool, error) {
	c.mu.Lock()
	if c.holds[flightKey(channel, version)] > 0 {
		c.mu.Unlock()
		return false, nil
	}
	if check != nil {
		if err := check(); err != nil {
			c.mu.Unlock()
			return false, err
		}
	}
	trash, err := c.trashName(channel, version)
	if err == nil {
		err = os.Rename(c.layout.StoreDir(channel, version), trash) // (1)
	}
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("cache: remove %s/%s: %w", channel, version, err)
	}
	c.forgetProofs(channel, version)
	delete(c.ids, flightKey(channel, version))
	c.metrics.removed.WithLabelValues(reason).Inc()
	err = errors.Join(os.Remove(c.layout.MetaFile(channel, version)), removeIfExists(c.layout.VolumeFetchedFile(channel, version)))
	c.mu.Unlock()
	err = errors.Join(err, os.RemoveAll(trash)) // (2)
	if err != nil {
		return true, fmt.Errorf("cache: remove %s/%s: %w", channel, version, err)
	}
	return true, nil
}

// StoredReleases reports every release in store/ as ready, with its size.
func (c *Cache) StoredReleases() ([]release.Progress, error) {
	entries, err := os.ReadDir(filepath.Join(c.layout.Root, "store"))
	if err != nil {
		return nil, fmt.Errorf("cache: list store: %w", err)
	}
	var out []release.Progress
	for _, e := range entries {
		if !e.IsDir() || release.ValidateChannelName(e.Name()) != nil {
			continue
		}
		versions, err := c.storedVersions(e.Name())
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			p := release.Progress{Channel: e.Name(), Version: v, State: release.StateReady}
			if rel, err := c.readMeta(e.Name(), v); err == nil {
				for _, ds := range rel.Datasets {
					p.BytesTotal += ds.Manifest.TotalSize()
				}
				p.BytesDone = p.BytesTotal
				p.UpdatedAt = rel.CreatedAt
			}
			p.BytesFromPeers, p.BytesFromOrigin = c.Sourced(e.Name(), v)
			out = append(out, p)
		}
	}
	return out, nil
}
