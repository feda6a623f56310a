package agent

import (
	"errors"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Needed is what the node needs now, for the cache's eviction
// (cache.Budget.Needed; docs/node.md, "Disk budgets"). It fails, and
// nothing is evicted, before the first desired state, or when a view
// or the staged volumes cannot be read: any of them may use any release.
func (a *Agent) Needed() (cache.Needed, error) {
	d, ok := a.Desired()
	if !ok {
		return cache.Needed{}, errors.New("agent: no desired state from the manager yet")
	}
	views, err := a.opts.Views.List()
	if err != nil {
		return cache.Needed{}, err
	}
	memViews, err := a.memoryViews()
	if err != nil {
		return cache.Needed{}, err
	}
	staged := map[string]bool{}
	if a.opts.Staged != nil {
		if staged, err = a.opts.Staged(); err != nil {
			return cache.Needed{}, err
		}
	}
	return neededReleases(d, views, memViews, staged), nil
}

// neededReleases is what eviction keeps:
//   - on disk: every release a view of either tier shows, is pinned to or
//     still has a tree of; each channel's pin; and for every channel used
//     (a view or a staged volume) or warmed on the node, its head and the
//     flips' targets;
//   - in RAM: the same for memory views, and the heads of channels warmed
//     in memory.
//
// Quotas are the channels' node quotas.
func neededReleases(d release.Desired, views, memViews []cache.ViewInfo, staged map[string]bool) cache.Needed {
	n := cache.Needed{Disk: map[string]map[string]bool{}, Memory: map[string]map[string]bool{}, Quotas: map[string]int64{}}
	keep := func(tier map[string]map[string]bool, channel string, versions ...string) {
		for _, v := range versions {
			if v == "" {
				continue
			}
			if tier[channel] == nil {
				tier[channel] = map[string]bool{}
			}
			tier[channel][v] = true
		}
	}
	used, inRAM := map[string]bool{}, map[string]bool{}
	memKeys := map[string]bool{}
	for ch := range staged {
		used[ch] = true
	}
	for i, v := range append(append([]cache.ViewInfo{}, views...), memViews...) {
		used[v.Channel] = true
		keep(n.Disk, v.Channel, append([]string{v.Current, v.Pinned}, v.Releases...)...)
		if i >= len(views) {
			inRAM[v.Channel] = true
			memKeys[v.VolumeID+"/"+v.PodUID] = true
			keep(n.Memory, v.Channel, append([]string{v.Current, v.Pinned}, v.Releases...)...)
		}
	}
	for _, ch := range d.Channels {
		keep(n.Disk, ch.Name, ch.Pinned)
		if used[ch.Name] || ch.Warm != "" {
			keep(n.Disk, ch.Name, ch.Head)
		}
		if inRAM[ch.Name] || ch.Warm == release.MediumMemory {
			keep(n.Memory, ch.Name, ch.Head)
		}
		if ch.NodeQuota > 0 {
			n.Quotas[ch.Name] = ch.NodeQuota
		}
	}
	for _, dv := range d.Views { // the flips' targets
		keep(n.Disk, dv.Channel, dv.Version)
		if memKeys[dv.VolumeID+"/"+dv.PodUID] {
			keep(n.Memory, dv.Channel, dv.Version)
		}
	}
	return n
}
