package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hydra-csi/hydra/pkg/release"
)

// install moves a verified download into store/.
//
// Algorithm (a crash at any step leaves either no release in store/ or the
// complete one; a repeated install finishes the job):
//  1. Make every file read-only (0444) and sync the filesystem, so the
//     bytes are durable before the release becomes visible. Directories
//     stay 0755: only their owner (root on a node) can write them, and
//     root ignores mode bits anyway; 0555 would only make a `hydra pull`
//     tree hard to delete for its owner. Pods never see store/: they see
//     views, bind-mounted read-only.
//  2. Move out of store/ a copy of another publish of the same name
//     (evictOther), then write the release record (its manifest) to meta/ atomically, and
//     the mark of a release that volumes' credentials fetched part of
//     (or remove a stale one): before the rename, so that no stored
//     release is ever without its mark.
//  3. Rename tmp/.../data to store/<channel>/<version> and sync store/<channel>.
//  4. Remove what is left of tmp/.../ (journal, markers).
func (c *Cache) install(rel release.Release, tmp string, files []plannedFile) error {
	for _, f := range files { // (1)
		if err := os.Chmod(f.path, 0o444); err != nil {
			return fmt.Errorf("cache: make %s read-only: %w", f.name(), err)
		}
	}
	if err := syncFS(tmp); err != nil {
		return fmt.Errorf("cache: sync %s: %w", tmp, err)
	}
	rec, err := json.Marshal(rel)
	if err != nil {
		return err
	}
	if err := c.evictOther(rel); err != nil { // (2)
		return err
	}
	if err := writeFileAtomic(c.layout.MetaFile(rel.Channel, rel.Version), rec); err != nil {
		return err
	}
	if err := c.markVolumeFetched(rel.Channel, rel.Version, fileExists(filepath.Join(tmp, volumeFetchedName))); err != nil {
		return err
	}
	dst := c.layout.StoreDir(rel.Channel, rel.Version)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("cache: create %s: %w", filepath.Dir(dst), err)
	}
	if err := os.Rename(filepath.Join(tmp, "data"), dst); err != nil && !c.Stored(rel.Channel, rel.Version) { // (3)
		return fmt.Errorf("cache: install %s/%s: %w", rel.Channel, rel.Version, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("cache: sync %s: %w", filepath.Dir(dst), err)
	}
	c.mu.Lock()
	c.ids[flightKey(rel.Channel, rel.Version)] = rel.Identity()
	c.mu.Unlock()
	if err := os.RemoveAll(tmp); err != nil && !errors.Is(err, os.ErrNotExist) { // (4)
		return fmt.Errorf("cache: clean %s: %w", tmp, err)
	}
	return nil
}
