package cache

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Removal reasons of hydra_cache_removed_total.
const (
	removedRetention = "retention"         // beyond the channel's nodeKeep
	removedReplaced  = "replaced"          // another publish under the same name came
	removedChannel   = "channel-deleted"   // its channel is gone from the manager
	removedPartial   = "abandoned-partial" // a partial download nobody fetches any more
	removedEvicted   = "evicted"           // over a budget, and nothing needs it (evict.go)
)

// StoredAs reports whether the release stored under (channel, version) is
// the publish id names (release.Identity): a copy of an earlier release of
// the same name counts as absent. A zero id takes whatever is stored.
func (c *Cache) StoredAs(channel, version string, id release.Identity) bool {
	if !c.Stored(channel, version) {
		return false
	}
	if id.IsZero() {
		return true
	}
	have, err := c.storedIdentity(channel, version)
	return err == nil && id.Matches(have)
}

// storedIdentity is the identity recorded in meta/ for a stored release,
// read once per install: the record holds the whole manifest.
func (c *Cache) storedIdentity(channel, version string) (release.Identity, error) {
	key := flightKey(channel, version)
	c.mu.Lock()
	id, ok := c.ids[key]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	raw, err := os.ReadFile(c.layout.MetaFile(channel, version))
	if err != nil {
		return id, fmt.Errorf("cache: release %s/%s: read its record: %w", channel, version, err)
	}
	var rec release.Identity // the record's seq and createdAt are the identity's
	if err := json.Unmarshal(raw, &rec); err != nil {
		return id, fmt.Errorf("cache: release record %s/%s: %w", channel, version, err)
	}
	c.mu.Lock()
	c.ids[key] = rec
	c.mu.Unlock()
	return rec, nil
}

// evictOther moves out of store/ a copy of another publish under rel's
// name, so that rel installs in its place. It runs inside rel's download
// (the single flight of the name), before meta/ is rewritten. Views built
// on the old copy keep their files: they are hardlinks, and only the
// store's names go. A copy being linked into a view right now (held) is
// left alone and the download fails, to be retried.
func (c *Cache) evictOther(rel release.Release) error {
	if !c.Stored(rel.Channel, rel.Version) || c.StoredAs(rel.Channel, rel.Version, rel.Identity()) {
		return nil
	}
	removed, err := c.remove(rel.Channel, rel.Version, removedReplaced)
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("cache: release %s/%s: the stored copy of another publish is being linked into a view; replacing it with %s later",
			rel.Channel, rel.Version, rel.Identity())
	}
	return nil
}
