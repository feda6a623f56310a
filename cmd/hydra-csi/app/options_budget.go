package app

import (
	"fmt"

	"github.com/spf13/pflag"
)

// budgetOptions are the flags of the node's disk budget (docs/node.md,
// "Disk budgets"): the watermarks of the cache's filesystem, which the RAM
// tier applies to its tmpfs. Per-channel quotas come from the manager.
type budgetOptions struct {
	// CacheHighWatermark is the percent of the filesystem's size past which
	// a download first evicts releases nothing needs.
	CacheHighWatermark int
	// CacheLowWatermark is the percent eviction brings the use down to.
	CacheLowWatermark int
}

func defaultBudgetOptions() budgetOptions {
	return budgetOptions{CacheHighWatermark: 85, CacheLowWatermark: 75}
}

func (o *budgetOptions) addBudgetFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.CacheHighWatermark, "cache-high-watermark", o.CacheHighWatermark, "percent of the cache filesystem's size (and of the --memory-size tmpfs) past which a download first evicts releases nothing on the node needs, least recently used first")
	fs.IntVar(&o.CacheLowWatermark, "cache-low-watermark", o.CacheLowWatermark, "percent of the cache filesystem's size that eviction brings the use down to; below --cache-high-watermark")
}

func (o *budgetOptions) validateBudget() error {
	if o.CacheHighWatermark <= 0 || o.CacheHighWatermark > 100 {
		return fmt.Errorf("--cache-high-watermark %d: must be from 1 to 100 (percent)", o.CacheHighWatermark)
	}
	if o.CacheLowWatermark <= 0 || o.CacheLowWatermark >= o.CacheHighWatermark {
		return fmt.Errorf("--cache-low-watermark %d: must be above 0 and below --cache-high-watermark %d (percent)", o.CacheLowWatermark, o.CacheHighWatermark)
	}
	return nil
}
