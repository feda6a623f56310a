package cache

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Hold marks a release in RAM as in use (a memory view is being linked to
// it) until the returned func is called; eviction never takes a held
// release. It fails when the release is not in RAM.
func (m *Memory) Hold(channel, version string) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.Stored(channel, version) {
		return nil, fmt.Errorf("cache: memory: release %s/%s is not in RAM", channel, version)
	}
	key := flightKey(channel, version)
	m.holds[key]++
	m.useGen++
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.useGen++
		if m.holds[key]--; m.holds[key] <= 0 {
			delete(m.holds, key)
		}
	}, nil
}

// makeRoom evicts from RAM, least recently used first, the releases no
// memory view uses or moves to (Needed.Memory) when loading need more
// bytes would pass the disk cache's high watermark of the tmpfs, down to
// its low watermark: the disk tier's rule (Cache.makeRoom) against the
// tmpfs's size. Whether rel then fits is load's to say. The disk copies
// stay.
func (m *Memory) makeRoom(rel release.Release, need int64) error {
	b := m.disk.budget.Load()
	if b == nil {
		return nil
	}
	m.disk.evictMu.Lock()
	defer m.disk.evictMu.Unlock()
	for round := 0; round < evictRounds; round++ {
		m.mu.Lock()
		gen := m.useGen
		m.mu.Unlock()
		needed, err := b.Needed()
		if err != nil {
			klog.InfoS("Not evicting from RAM: what the node needs is unknown", "channel", rel.Channel, "release", rel.Version, "err", err)
			return nil
		}
		err = m.fitWatermark(rel, need, *b, needed.Memory, gen)
		if !errors.Is(err, errUseChanged) {
			return err
		}
	}
	return nil
}

func (m *Memory) fitWatermark(rel release.Release, need int64, b Budget, keep map[string]map[string]bool, gen uint64) error {
	use, err := statUsage(m.layout.Root)
	if err != nil || !use.over(need, b.HighWatermark) {
		return err
	}
	for _, cd := range m.candidates(rel, keep) {
		if !use.over(need, b.LowWatermark) {
			return nil
		}
		if err := m.evict(cd, gen); err != nil {
			return err
		}
		if use, err = statUsage(m.layout.Root); err != nil {
			return err
		}
	}
	return nil
}

// candidates are the releases in RAM not in keep and not rel, least
// recently used first.
func (m *Memory) candidates(rel release.Release, keep map[string]map[string]bool) []candidate {
	channels, _ := os.ReadDir(filepath.Join(m.layout.Root, "store"))
	var out []candidate
	for _, ch := range channels {
		if !ch.IsDir() || release.ValidateChannelName(ch.Name()) != nil {
			continue
		}
		versions, _ := os.ReadDir(m.layout.ChannelStoreDir(ch.Name()))
		for _, v := range versions {
			if !v.IsDir() || keep[ch.Name()][v.Name()] || (ch.Name() == rel.Channel && v.Name() == rel.Version) {
				continue
			}
			cd := candidate{channel: ch.Name(), version: v.Name(), used: lastUse(m.layout, ch.Name(), v.Name())}
			if r, err := m.disk.readMeta(ch.Name(), v.Name()); err == nil {
				cd.bytes = r.Summarize().Bytes
			}
			out = append(out, cd)
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(a.used.Compare(b.used), strings.Compare(a.channel, b.channel), strings.Compare(a.version, b.version))
	})
	return out
}

// evict drops one release from RAM unless it is held or a release was
// held or let go since gen (errUseChanged).
func (m *Memory) evict(cd candidate, gen uint64) error {
	m.mu.Lock()
	switch {
	case m.useGen != gen:
		m.mu.Unlock()
		return errUseChanged
	case m.holds[flightKey(cd.channel, cd.version)] > 0:
		m.mu.Unlock()
		return nil
	}
	trash, err := m.unlink(cd.channel, cd.version)
	m.mu.Unlock()
	if err == nil {
		err = m.purge(cd.channel, cd.version, trash)
	}
	if err != nil {
		return err
	}
	m.disk.metrics.evictions.WithLabelValues(tierMemory, evictWatermark).Inc()
	m.disk.metrics.evicted.WithLabelValues(tierMemory, evictWatermark).Add(float64(cd.bytes))
	klog.V(2).InfoS("Evicted a release from RAM that no memory view needs", "channel", cd.channel, "release", cd.version,
		"bytes", cd.bytes, "lastUse", cd.used)
	return nil
}
