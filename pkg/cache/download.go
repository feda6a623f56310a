package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// download fetches, verifies and installs rel.
//
// Algorithm (crash-safe: a kill at any point leaves no partial release in
// store/, and the next run continues from the journal):
//  1. Prepare tmp/<channel>/<version>: keep what is there when it is the
//     same release (resume), else start over.
//  2. Plan the files and check free space for what is left to fetch.
//  3. Create every file at its full size, its space allocated, or
//     hardlink it from a stored release when an identical file is already
//     there; a file's parts are queued as soon as it exists, so creating
//     the next files overlaps fetching the first ones.
//  4. Fetch the missing parts under the global request budget; a committer
//     syncs finished parts and only then journals them.
//  5. Verify every file against the manifest (size always, checksum when
//     present).
//  6. Install: read-only files, the release record, one rename into store/.
//
// reader fetches the bytes. byVolume says it signs with a volume's own
// credentials: the release is then marked (see access.go), in tmp/ from
// the start, so that a resumed download by the node still marks it.
func (c *Cache) download(ctx context.Context, rel release.Release, prog *progress, reader source.Reader, byVolume bool, fl *flight) (err error) {
	tmp := c.layout.TmpDir(rel.Channel, rel.Version)
	if err := c.prepareTmp(tmp, rel); err != nil { // (1)
		return err
	}
	if byVolume {
		if err := writeFileAtomic(filepath.Join(tmp, volumeFetchedName), nil); err != nil {
			return err
		}
	}
	j, done, from, err := loadJournal(filepath.Join(tmp, "journal"))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := j.Close(); err == nil {
			err = cerr
		}
	}()
	files, err := c.plan(rel, filepath.Join(tmp, "data"), byVolume) // (2)
	if err != nil {
		return err
	}
	if err := c.checkSpace(rel, tmp, files); err != nil {
		return err
	}
	run := &fetchRun{rel: rel, tmp: tmp, prog: prog, byVolume: byVolume, firstPart: numberParts(files),
		originOnly: map[int]bool{}, from: from, marked: len(from) > 0, suspect: map[int]bool{}}
	if fl != nil && !byVolume {
		run.serve = newServing(files, done)
		fl.setServing(run.serve)
		defer run.serve.end()
	}
	prog.total.Store(totalSize(files))
	prog.done.Store(doneSize(files, done, c.partSize))
	prog.set(release.StateDownloading, "")
	// A file a peer sent bad bytes of is fetched again, from the origin:
	// one more round at most, since origin-only files blame no peer.
	for round := 0; ; round++ {
		if err := c.fetchParts(ctx, reader, run, files, done, j); err != nil { // (3), (4)
			return fmt.Errorf("cache: release %s/%s: %w", rel.Channel, rel.Version, err)
		}
		again, err := c.verifyFiles(run, files, done, j) // (5)
		if err != nil {
			return fmt.Errorf("cache: release %s/%s: %w", rel.Channel, rel.Version, err)
		}
		if len(again) == 0 {
			break
		}
		if round > 0 {
			return fmt.Errorf("cache: release %s/%s: files failed verification again: %w", rel.Channel, rel.Version, ErrVerify)
		}
		for _, idx := range again {
			run.originOnly[idx] = true
		}
		prog.done.Store(doneSize(files, done, c.partSize))
	}
	return c.install(rel, tmp, files) // (6)
}

// prepareTmp keeps an earlier partial download of the same release and
// removes any other leftover (a version re-published with new content
// after its channel was deleted and recreated).
func (c *Cache) prepareTmp(tmp string, rel release.Release) error {
	want, err := json.Marshal(rel.Datasets)
	if err != nil {
		return err
	}
	marker := filepath.Join(tmp, "release.json")
	if have, err := os.ReadFile(marker); err == nil && bytes.Equal(have, want) {
		return nil
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cache: clear %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "data"), 0o755); err != nil {
		return fmt.Errorf("cache: create %s: %w", tmp, err)
	}
	return writeFileAtomic(marker, want)
}

func totalSize(files []plannedFile) int64 {
	var n int64
	for _, f := range files {
		n += f.file.Size
	}
	return n
}

// doneSize counts bytes already present: linked files and journaled parts.
func doneSize(files []plannedFile, done map[partKey]uint64, partSize int64) int64 {
	var n int64
	for _, f := range files {
		if f.linkFrom != "" {
			n += f.file.Size
			continue
		}
		for p := range f.parts {
			if _, ok := done[partKey{f.idx, p}]; ok {
				n += partLen(f.file.Size, partSize, p)
			}
		}
	}
	return n
}

// partLen is the length of part p of a file of size bytes.
func partLen(size, partSize int64, p int) int64 {
	return min(partSize, size-int64(p)*partSize)
}

// checkSpace refuses a download the filesystem cannot hold. A file an
// earlier run created in tmp/ holds the blocks allocated to it already.
// With a budget, releases nothing needs are evicted first when the
// download would pass the high watermark or its channel's quota
// (makeRoom). When the download would not fit, the partial downloads
// nobody is fetching give their space back then, so that only live data
// counts.
func (c *Cache) checkSpace(rel release.Release, tmp string, files []plannedFile) error {
	var need int64
	for _, f := range files {
		if f.linkFrom != "" {
			continue
		}
		need += f.file.Size
		var st unix.Stat_t
		if err := unix.Stat(f.path, &st); err == nil && st.Size == f.file.Size {
			need -= min(f.file.Size, st.Blocks*512)
		}
	}
	if err := c.makeRoom(rel, files, need); err != nil {
		return err
	}
	free, err := freeBytes(tmp)
	if err != nil {
		return err
	}
	if need > free {
		if n, err := c.SweepPartials(0); n > 0 {
			klog.InfoS("Took back the space of abandoned partial downloads for a release that would not fit",
				"channel", rel.Channel, "release", rel.Version, "removed", n, "err", err)
			if free, err = freeBytes(tmp); err != nil {
				return err
			}
		}
	}
	if need > free {
		return fmt.Errorf("cache: release %s/%s needs %d more bytes, %d free under %s: %w",
			rel.Channel, rel.Version, need, free, c.layout.Root, ErrNoSpace)
	}
	return nil
}

// freeBytes is the space an unprivileged writer may still use under dir.
func freeBytes(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("cache: statfs %s: %w", dir, err)
	}
	return int64(min(st.Bavail, uint64(math.MaxInt64)/uint64(max(st.Bsize, 1)))) * st.Bsize, nil //nolint:gosec // G115: clamped above
}

// createFile makes f exist at its final size with its space allocated,
// or links it. A file that already has its size is left alone: a file
// never has a wrong size once its parts are being fetched, so a resumed
// file keeps its parts.
func (c *Cache) createFile(f plannedFile) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", f.name(), err)
	}
	if f.linkFrom != "" {
		if err := linkFile(f.linkFrom, f.path); err != nil {
			return fmt.Errorf("link unchanged %s: %w", f.name(), err)
		}
		c.metrics.linked.Add(float64(f.file.Size))
		return nil
	}
	if err := preallocate(f.path, f.file.Size); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("allocate %s (%d bytes): %w", f.name(), f.file.Size, ErrNoSpace)
		}
		return fmt.Errorf("allocate %s: %w", f.name(), err)
	}
	return nil
}

// linkFile hardlinks from into to, keeping an existing link to the same file.
func linkFile(from, to string) error {
	if a, err := os.Stat(to); err == nil {
		if b, err := os.Stat(from); err == nil && os.SameFile(a, b) {
			return nil
		}
		if err := os.Remove(to); err != nil {
			return err
		}
	}
	return os.Link(from, to)
}

// preallocate creates path at size bytes with its space reserved, so that
// a full filesystem fails here, before the file's parts are fetched, and a
// disk lays the file out whole rather than in the order its parts arrive.
// The whole file is allocated before any of its parts is written: a
// fallocate holds the file's inode lock, and per-part allocation would
// make the writers of the file's other parts wait on it.
func preallocate(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil && st.Size() != size {
		err = f.Truncate(0)
		if err == nil && size > 0 {
			err = unix.Fallocate(int(f.Fd()), 0, 0, size)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = f.Truncate(size)
			}
		}
	}
	return errors.Join(err, f.Close())
}

// writeFileAtomic writes data to path through a temp file, fsync and rename.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	err = errors.Join(err, f.Sync(), f.Close())
	if err != nil {
		return fmt.Errorf("cache: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cache: rename into %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename or create in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
