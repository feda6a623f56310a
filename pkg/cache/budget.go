package cache

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Disk budgets (docs/node.md, "Disk budgets"). A download that would take
// the cache's filesystem past its high watermark, or its channel past its
// node quota, first evicts releases nothing on the node needs, least
// recently used first, down to the low watermark (for a quota: until the
// channel fits). The RAM tier does the same against its tmpfs. What is
// needed is the node agent's to say (Budget.Needed); a cache without it
// (hydra pull's) never evicts.

// Budget bounds a cache's disk and RAM tiers.
type Budget struct {
	// HighWatermark and LowWatermark are percents of a tier's filesystem
	// (used over used plus available, as df shows it): past High a
	// download first evicts, down to Low. 0 < Low < High <= 100.
	HighWatermark, LowWatermark int
	// Needed says what the node needs now. Eviction runs only with it,
	// and not when it fails.
	Needed func() (Needed, error)
}

// Needed is what eviction must keep, as the node agent sees it now.
type Needed struct {
	// Disk and Memory are, by channel, the versions each tier keeps
	// whatever its budget.
	Disk, Memory map[string]map[string]bool
	// Quotas bound the bytes each channel's releases take in the disk
	// store (release.DesiredChannel.NodeQuota); absent or 0: none.
	Quotas map[string]int64
}

// Validate checks the watermarks.
func (b Budget) Validate() error {
	if b.HighWatermark <= 0 || b.HighWatermark > 100 {
		return fmt.Errorf("cache: budget: high watermark %d%%: must be from 1 to 100", b.HighWatermark)
	}
	if b.LowWatermark <= 0 || b.LowWatermark >= b.HighWatermark {
		return fmt.Errorf("cache: budget: low watermark %d%%: must be above 0 and below the high watermark %d%%", b.LowWatermark, b.HighWatermark)
	}
	return nil
}

// SetBudget turns eviction on (docs/node.md, "Disk budgets"); call it
// before the first download.
func (c *Cache) SetBudget(b Budget) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if b.Needed == nil {
		return errors.New("cache: budget: Needed is required: nothing is evicted without knowing what the node needs")
	}
	c.budget.Store(&b)
	return nil
}

// Eviction reasons and tiers of hydra_cache_evictions_total.
const (
	evictWatermark = "watermark"
	evictQuota     = "quota"
	tierDisk       = "disk"
	tierMemory     = "memory"
)

// fsUsage is a filesystem's size as df counts it: what is used and what
// an unprivileged writer may still use.
type fsUsage struct{ used, avail int64 }

func (u fsUsage) capacity() int64 { return u.used + u.avail }

// over reports whether used+more bytes pass pct percent of the capacity.
func (u fsUsage) over(more int64, pct int) bool {
	return (u.used+more)*100 > u.capacity()*int64(pct)
}

func statUsage(dir string) (fsUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fsUsage{}, fmt.Errorf("cache: statfs %s: %w", dir, err)
	}
	bs := int64(max(st.Bsize, 1))
	return fsUsage{used: int64(st.Blocks-st.Bfree) * bs, avail: int64(st.Bavail) * bs}, nil //nolint:gosec // G115: block counts of a real filesystem
}

// touchUse records a use of a stored release (a view linked to it or
// leaving it, an install): the modification time of its record in meta/,
// which eviction orders by. One utimensat, not synced: a crash may lose
// the last touches, which only makes eviction take a release a little
// sooner.
func touchUse(l Layout, channel, version string) {
	if channel == "" || version == "" {
		return
	}
	now := time.Now()
	_ = os.Chtimes(l.MetaFile(channel, version), now, now)
}

// lastUse is when a stored release was last used (touchUse); the zero
// time when its record is missing, so that it goes first.
func lastUse(l Layout, channel, version string) time.Time {
	fi, err := os.Stat(l.MetaFile(channel, version))
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

// usedCollector is hydra_cache_filesystem_used_ratio: one statfs per
// tier and scrape.
type usedCollector struct {
	desc  *prometheus.Desc
	roots func() map[string]string // tier → root
}

func (u usedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- u.desc }

func (u usedCollector) Collect(ch chan<- prometheus.Metric) {
	for tier, root := range u.roots() {
		if use, err := statUsage(root); err == nil && use.capacity() > 0 {
			ch <- prometheus.MustNewConstMetric(u.desc, prometheus.GaugeValue, float64(use.used)/float64(use.capacity()), tier)
		}
	}
}
