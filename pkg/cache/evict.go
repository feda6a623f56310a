package cache

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// errUseChanged: a release was held or let go since the needed set was
// read; eviction reads it again.
var errUseChanged = errors.New("a release was held or let go meanwhile")

// evictRounds bounds how often eviction reads the needed set again
// because uses changed under it.
const evictRounds = 4

// candidate is a stored release eviction may take.
type candidate struct {
	channel, version string
	used             time.Time
	bytes            int64
}

// makeRoom is the budget's part of a download's space check (checkSpace):
// need is what the download still has to write; linked are the versions
// of rel's channel it hardlinks files from.
//  1. Read what the node needs (Budget.Needed); without a budget or
//     when that fails, nothing is evicted.
//  2. Quota: when the channel's stored bytes plus rel's own pass its
//     quota, evict the channel's unneeded releases, least recently used
//     first, until it fits; when even all of them would not make it fit,
//     evict none and fail with ErrNoSpace.
//  3. Watermark: when the filesystem's use plus need passes the high
//     watermark, evict unneeded releases of any channel, least recently
//     used first, until use plus need is under the low watermark or none
//     is left. Whether the download then fits is checkSpace's to say.
//
// A release is evicted by remove: renamed out of store/ first, so a kill
// at any point leaves it whole in store/ or gone.
func (c *Cache) makeRoom(rel release.Release, files []plannedFile, need int64) error {
	b := c.budget.Load()
	if b == nil {
		return nil
	}
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	for range evictRounds {
		gen := c.useGeneration()
		needed, err := b.Needed() // (1)
		if err != nil {
			klog.InfoS("Not evicting: what the node needs is unknown", "channel", rel.Channel, "release", rel.Version, "err", err)
			return nil
		}
		err = c.fitQuota(rel, files, needed, gen) // (2)
		if err == nil {
			err = c.fitWatermark(rel, files, need, *b, needed, gen) // (3)
		}
		if !errors.Is(err, errUseChanged) {
			return err
		}
	}
	return nil // uses kept changing: it evicted what it could, and checkSpace decides
}

// useGeneration counts holds taken and let go (Hold).
func (c *Cache) useGeneration() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.useGen
}

// fitQuota is step (2) of makeRoom.
func (c *Cache) fitQuota(rel release.Release, files []plannedFile, needed Needed, gen uint64) error {
	quota := needed.Quotas[rel.Channel]
	if quota <= 0 {
		return nil
	}
	usage, err := c.channelUsage(rel.Channel, rel.Version)
	if err != nil {
		return err
	}
	var own int64
	for _, f := range files {
		if f.linkFrom == "" {
			own += f.file.Size
		}
	}
	if usage.total()+own <= quota {
		return nil
	}
	cands := c.candidates(rel, files, needed.Disk, rel.Channel)
	freeable := usage.total()
	for _, cd := range cands {
		usage.drop(cd.version)
	}
	if usage.total()+own > quota {
		return fmt.Errorf("cache: release %s/%s: %d bytes with the channel's %d stored would pass its node quota of %d bytes, and evicting what the node does not need leaves %d: %w",
			rel.Channel, rel.Version, own, freeable, quota, usage.total(), ErrNoSpace)
	}
	usage, err = c.channelUsage(rel.Channel, rel.Version)
	if err != nil {
		return err
	}
	for _, cd := range cands {
		if usage.total()+own <= quota {
			return nil
		}
		ok, err := c.evict(cd, evictQuota, gen)
		if err != nil {
			return err
		}
		if ok {
			usage.drop(cd.version)
		}
	}
	if usage.total()+own > quota {
		return fmt.Errorf("cache: release %s/%s: %d bytes with the channel's %d stored pass its node quota of %d bytes: %w",
			rel.Channel, rel.Version, own, usage.total(), quota, ErrNoSpace)
	}
	return nil
}

// fitWatermark is step (3) of makeRoom.
func (c *Cache) fitWatermark(rel release.Release, files []plannedFile, need int64, b Budget, needed Needed, gen uint64) error {
	use, err := statUsage(c.layout.Root)
	if err != nil || !use.over(need, b.HighWatermark) {
		return err
	}
	for _, cd := range c.candidates(rel, files, needed.Disk, "") {
		if !use.over(need, b.LowWatermark) {
			return nil
		}
		if _, err := c.evict(cd, evictWatermark, gen); err != nil {
			return err
		}
		if use, err = statUsage(c.layout.Root); err != nil {
			return err
		}
	}
	return nil
}

// candidates lists the stored releases nothing needs (of channel, or of
// every channel when empty), least recently used first: not in keep, not
// rel, not a release rel links files from, not being downloaded. Holds
// are checked at removal.
func (c *Cache) candidates(rel release.Release, files []plannedFile, keep map[string]map[string]bool, channel string) []candidate {
	linked := map[string]bool{}
	prefix := c.layout.ChannelStoreDir(rel.Channel) + string(filepath.Separator)
	for _, f := range files {
		if v, _, ok := strings.Cut(strings.TrimPrefix(f.linkFrom, prefix), string(filepath.Separator)); ok && f.linkFrom != "" {
			linked[v] = true
		}
	}
	stored, err := c.StoredReleases()
	if err != nil {
		klog.ErrorS(err, "Listing the store for eviction")
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []candidate
	for _, p := range stored {
		_, flying := c.flights[flightKey(p.Channel, p.Version)]
		switch {
		case channel != "" && p.Channel != channel, keep[p.Channel][p.Version], flying,
			p.Channel == rel.Channel && (p.Version == rel.Version || linked[p.Version]):
			continue
		}
		out = append(out, candidate{channel: p.Channel, version: p.Version, bytes: p.BytesTotal,
			used: lastUse(c.layout, p.Channel, p.Version)})
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(a.used.Compare(b.used), strings.Compare(a.channel, b.channel), strings.Compare(a.version, b.version))
	})
	return out
}

// evict removes one candidate unless it is held, being downloaded, or any
// release was held or let go since gen (errUseChanged: the needed set may
// be stale). It reports whether it removed it.
func (c *Cache) evict(cd candidate, reason string, gen uint64) (bool, error) {
	ok, err := c.removeIf(cd.channel, cd.version, removedEvicted, func() error {
		if c.useGen != gen {
			return errUseChanged
		}
		if _, flying := c.flights[flightKey(cd.channel, cd.version)]; flying {
			return errUseChanged
		}
		return nil
	})
	if !ok {
		return false, err
	}
	c.metrics.evictions.WithLabelValues(tierDisk, reason).Inc()
	c.metrics.evicted.WithLabelValues(tierDisk, reason).Add(float64(cd.bytes))
	c.dropSpares(cd.channel, cd.version)
	klog.V(2).InfoS("Evicted a release nothing on the node needs", "channel", cd.channel, "release", cd.version,
		"reason", reason, "bytes", cd.bytes, "lastUse", cd.used)
	return true, err
}

// dropSpares removes the spare view trees of an evicted release: they
// are hardlinks to its files, which would otherwise keep their blocks.
// Each is renamed to a dot name first, as Views.PruneSpares does, so a
// tree is never half there under its name.
func (c *Cache) dropSpares(channel, version string) {
	dir := filepath.Join(c.layout.ViewsDir(), sparesName, channel)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if v, _, ok := strings.Cut(e.Name(), spareSep); !ok || v != version {
			continue
		}
		tmp := filepath.Join(dir, prunePrefix+e.Name())
		if err := os.Rename(filepath.Join(dir, e.Name()), tmp); err == nil {
			_ = os.RemoveAll(tmp)
		}
	}
}

// usage counts a channel's stored bytes, a file shared by several of its
// releases (hardlinked: the same identity) once.
type usage struct {
	size map[string]int64           // file identity → size
	in   map[string]map[string]bool // file identity → versions holding it
}

func (u usage) total() int64 {
	var n int64
	for id, s := range u.size {
		if len(u.in[id]) > 0 {
			n += s
		}
	}
	return n
}

// drop forgets a version's files.
func (u usage) drop(version string) {
	for _, vs := range u.in {
		delete(vs, version)
	}
}

// channelUsage reads the records of a channel's stored releases but
// except (which a download replaces).
func (c *Cache) channelUsage(channel, except string) (usage, error) {
	u := usage{size: map[string]int64{}, in: map[string]map[string]bool{}}
	versions, err := c.storedVersions(channel)
	if err != nil {
		return u, err
	}
	for _, v := range versions {
		if v == except {
			continue
		}
		rel, err := c.readMeta(channel, v)
		if err != nil {
			continue // a release without a record cannot be counted or shared
		}
		for _, ds := range rel.Datasets {
			src, _ := release.ParseSource(ds.Source)
			for _, f := range ds.Manifest.Files {
				id := identityOf(src, f)
				if id == "" {
					id = "own:" + v + "/" + ds.Name + "/" + f.Path
				}
				if u.in[id] == nil {
					u.in[id] = map[string]bool{}
				}
				u.size[id] = f.Size
				u.in[id][v] = true
			}
		}
	}
	return u, nil
}
