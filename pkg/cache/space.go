package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// DefaultPartialGrace is how long a partial download nobody writes to is
// kept for a resume before SweepPartials takes its space back.
const DefaultPartialGrace = 10 * time.Minute

// RemoveChannel removes every stored release of a channel that no longer
// exists, and its partial downloads nobody is fetching. The caller checks
// that no view uses the channel; a held release (a view being built from
// it) stays, for the next call. It returns the removed versions.
func (c *Cache) RemoveChannel(channel string) ([]string, error) {
	if err := release.ValidateChannelName(channel); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	versions, err := c.storedVersions(channel)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, v := range versions {
		ok, err := c.remove(channel, v, removedChannel)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			removed = append(removed, v)
		}
	}
	partials, err := c.partials()
	errs = append(errs, err)
	for _, p := range partials {
		if p.channel == channel {
			_, err := c.dropPartial(p, 0, removedChannel)
			errs = append(errs, err)
		}
	}
	// Empty directories of the channel go too; a non-empty one (a held
	// release, a running download) stays.
	for _, dir := range []string{c.layout.ChannelStoreDir(channel), filepath.Dir(c.layout.MetaFile(channel, "x")),
		filepath.Dir(c.layout.TmpDir(channel, "x"))} {
		_ = os.Remove(dir)
	}
	return removed, errors.Join(errs...)
}

// SweepPartials removes the partial downloads in tmp/ that no download is
// writing and that nothing wrote to for grace (0: every one not being
// written), so that a release nobody fetches any more gives back the
// space its files were allocated. It returns how many it removed.
func (c *Cache) SweepPartials(grace time.Duration) (int, error) {
	partials, err := c.partials()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, p := range partials {
		ok, err := c.dropPartial(p, grace, removedPartial)
		errs = append(errs, err)
		if ok {
			n++
			klog.V(2).InfoS("Removed an abandoned partial download", "channel", p.channel, "release", p.version)
		}
	}
	return n, errors.Join(errs...)
}

// partial is one download's directory in tmp/.
type partial struct{ channel, version string }

// partials lists tmp/<channel>/<version> directories.
func (c *Cache) partials() ([]partial, error) {
	root := filepath.Join(c.layout.Root, "tmp")
	channels, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("cache: list partial downloads in %s: %w", root, err)
	}
	var out []partial
	for _, ch := range channels {
		if !ch.IsDir() || release.ValidateChannelName(ch.Name()) != nil {
			continue // .trash and other temp names start with '.'
		}
		versions, err := os.ReadDir(filepath.Join(root, ch.Name()))
		if err != nil {
			return nil, fmt.Errorf("cache: list partial downloads of %s: %w", ch.Name(), err)
		}
		for _, v := range versions {
			if v.IsDir() && release.ValidateVersion(v.Name()) == nil {
				out = append(out, partial{ch.Name(), v.Name()})
			}
		}
	}
	return out, nil
}

// dropPartial removes one partial download unless a flight writes it or
// it was written to within grace. Under c.mu it is renamed out of tmp/,
// so a download starting meanwhile (join takes c.mu) starts afresh rather
// than resuming a tree being deleted; the deletion runs after.
func (c *Cache) dropPartial(p partial, grace time.Duration, reason string) (bool, error) {
	dir := c.layout.TmpDir(p.channel, p.version)
	if grace > 0 && time.Since(lastWrite(dir)) < grace {
		return false, nil
	}
	c.mu.Lock()
	if _, busy := c.flights[flightKey(p.channel, p.version)]; busy {
		c.mu.Unlock()
		return false, nil
	}
	trash, err := c.trashName(p.channel, p.version)
	if err == nil {
		err = os.Rename(dir, trash)
	}
	c.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cache: remove partial download %s/%s: %w", p.channel, p.version, err)
	}
	c.metrics.removed.WithLabelValues(reason).Inc()
	if err := os.RemoveAll(trash); err != nil {
		return true, fmt.Errorf("cache: remove partial download %s/%s: %w", p.channel, p.version, err)
	}
	return true, nil
}

// trashName is a fresh name under tmp/.trash for a tree being deleted (New
// empties it, should a crash interrupt a deletion).
func (c *Cache) trashName(channel, version string) (string, error) {
	var r [6]byte
	_, _ = rand.Read(r[:])
	trash := filepath.Join(c.layout.Root, "tmp", ".trash", channel+"-"+version+"-"+hex.EncodeToString(r[:]))
	return trash, os.MkdirAll(filepath.Dir(trash), 0o755)
}

// lastWrite is the newest modification time of a partial download's
// directory and the files at its top (the journal, appended to as parts
// land, and the markers); the zero time when none can be read.
func lastWrite(dir string) time.Time {
	var last time.Time
	if fi, err := os.Stat(dir); err == nil {
		last = fi.ModTime()
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
	}
	return last
}
