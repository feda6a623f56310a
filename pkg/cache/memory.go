package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Memory is the RAM tier (medium "memory"): releases copied from the disk
// store into a tmpfs the plugin mounts and sizes. Views of memory volumes
// are built from it, so reads never touch the disk; the disk copy stays, so
// a reboot (which empties the tmpfs) reloads from local disk, not from S3.
// It keeps one release per channel in RAM plus the one being rolled to.
type Memory struct {
	disk   *Cache
	layout Layout

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// holds and useGen are the RAM tier's (Memory.Hold), guarded by mu.
	holds  map[string]int
	useGen uint64
}

// NewMemory mounts a tmpfs of size bytes at root (unless one is mounted
// there already: a restarted plugin keeps the RAM copies pods use) and
// returns the RAM tier over the disk cache.
func NewMemory(disk *Cache, root string, size int64) (*Memory, error) {
	if err := mountTmpfs(root, size); err != nil {
		return nil, err
	}
	l := Layout{Root: root}
	// A copy a crash interrupted is never resumed: it goes, so that the
	// RAM it holds counts as free.
	if err := os.RemoveAll(filepath.Join(root, "tmp")); err != nil {
		return nil, fmt.Errorf("cache: memory: clear %s/tmp: %w", root, err)
	}
	for _, d := range []string{"store", "tmp", "meta", "views"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("cache: memory: create %s: %w", d, err)
		}
	}
	disk.memoryRoot.Store(&root)
	return &Memory{disk: disk, layout: l, locks: map[string]*sync.Mutex{}, holds: map[string]int{}}, nil
}

// Layout returns the RAM tier's paths (for views of memory volumes).
func (m *Memory) Layout() Layout { return m.layout }

// Stored reports whether a release is in RAM.
func (m *Memory) Stored(channel, version string) bool {
	fi, err := os.Stat(m.layout.StoreDir(channel, version))
	return err == nil && fi.IsDir()
}

// StoredAs reports whether the release in RAM under (channel, version) is
// the publish id names (see Cache.StoredAs); a zero id takes what is there.
func (m *Memory) StoredAs(channel, version string, id release.Identity) bool {
	if !m.Stored(channel, version) {
		return false
	}
	if id.IsZero() {
		return true
	}
	raw, err := os.ReadFile(m.layout.MetaFile(channel, version))
	var have release.Identity
	return err == nil && json.Unmarshal(raw, &have) == nil && id.Matches(have)
}

// Ensure makes a release present in RAM with the node's credentials:
// EnsureFor with nil.
func (m *Memory) Ensure(ctx context.Context, rel release.Release) error {
	return m.EnsureFor(ctx, rel, nil)
}

// EnsureFor makes a release present in RAM: on the disk store first
// (downloaded with creds if needed, and proved readable with them: see
// Cache.EnsureFor), then copied into the tmpfs and renamed into its store/.
func (m *Memory) EnsureFor(ctx context.Context, rel release.Release, creds *source.Credentials) error {
	if err := m.disk.EnsureFor(ctx, rel, creds); err != nil {
		return err
	}
	lock := m.lock(rel.Channel, rel.Version)
	lock.Lock()
	defer lock.Unlock()
	if m.StoredAs(rel.Channel, rel.Version, rel.Identity()) {
		return nil
	}
	if m.Stored(rel.Channel, rel.Version) {
		// A copy of another publish of the name (see release.Identity):
		// memory views on it keep their files, hardlinks on the tmpfs.
		if err := m.drop(rel.Channel, rel.Version); err != nil {
			return err
		}
	}
	return m.load(ctx, rel)
}

func (m *Memory) lock(channel, version string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := flightKey(channel, version)
	if m.locks[key] == nil {
		m.locks[key] = &sync.Mutex{}
	}
	return m.locks[key]
}

// load copies a stored release into RAM.
//
//  1. Make room for the release past the high watermark (makeRoom), then
//     check the tmpfs has room for it (ResourceExhausted otherwise).
//  2. Copy the tree into tmp/ on the tmpfs, files read-only.
//  3. Record the release's identity in meta/, then rename the tree into
//     store/ on the tmpfs: a RAM release is whole or absent, and never
//     without its identity.
func (m *Memory) load(ctx context.Context, rel release.Release) error {
	src := m.disk.layout.StoreDir(rel.Channel, rel.Version)
	need := rel.Summarize().Bytes
	if err := m.makeRoom(rel, need); err != nil {
		return err
	}
	free, err := freeBytes(m.layout.Root)
	if err != nil {
		return err
	}
	if need > free { // (1)
		return fmt.Errorf("cache: memory: release %s/%s needs %d bytes of RAM, %d free in the tmpfs at %s: %w",
			rel.Channel, rel.Version, need, free, m.layout.Root, ErrNoSpace)
	}
	tmp := m.layout.TmpDir(rel.Channel, rel.Version)
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("cache: memory: clear %s: %w", tmp, err)
	}
	if err := copyTree(ctx, src, tmp); err != nil { // (2)
		_ = os.RemoveAll(tmp)
		if errors.Is(err, unix.ENOSPC) {
			err = fmt.Errorf("%w: %w", err, ErrNoSpace)
		}
		return fmt.Errorf("cache: memory: load %s/%s: %w", rel.Channel, rel.Version, err)
	}
	dst := m.layout.StoreDir(rel.Channel, rel.Version)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	id, err := json.Marshal(rel.Identity())
	if err != nil {
		return err
	}
	if err := writeFileAtomic(m.layout.MetaFile(rel.Channel, rel.Version), id); err != nil { // (3)
		return fmt.Errorf("cache: memory: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("cache: memory: install %s/%s: %w", rel.Channel, rel.Version, err)
	}
	return nil
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o444)
	if err != nil {
		return errors.Join(err, in.Close())
	}
	_, err = io.Copy(out, in) // copy_file_range where the kernel allows it
	return errors.Join(err, out.Close(), in.Close())
}

// Retain keeps in RAM only the releases in keep (what memory views use and
// the release being rolled to); the disk copies stay.
func (m *Memory) Retain(channel string, keep map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(m.layout.ChannelStoreDir(channel))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: memory: list %s: %w", channel, err)
	}
	var removed []string
	for _, e := range entries {
		if keep[e.Name()] {
			continue
		}
		if err := m.drop(channel, e.Name()); err != nil {
			return removed, err
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}

// drop removes one release from RAM: renamed out of store/ first, so no
// view is ever built from a half-deleted tree.
func (m *Memory) drop(channel, version string) error {
	trash, err := m.unlink(channel, version)
	if err != nil {
		return err
	}
	return m.purge(channel, version, trash)
}

// unlink renames a release out of the RAM tier's store/.
func (m *Memory) unlink(channel, version string) (string, error) {
	trash := filepath.Join(m.layout.Root, "tmp", ".trash-"+channel+"-"+version)
	if err := os.Rename(m.layout.StoreDir(channel, version), trash); err != nil {
		return "", fmt.Errorf("cache: memory: remove %s/%s: %w", channel, version, err)
	}
	return trash, nil
}

// purge deletes an unlinked release's tree, then its record.
func (m *Memory) purge(channel, version, trash string) error {
	if err := errors.Join(os.RemoveAll(trash), removeIfExists(m.layout.MetaFile(channel, version))); err != nil {
		return fmt.Errorf("cache: memory: remove %s/%s: %w", channel, version, err)
	}
	return nil
}

// mountTmpfs mounts a tmpfs of size bytes at root unless a tmpfs is
// mounted there already (kept with whatever options it has).
//
// The tmpfs uses transparent huge pages for files that span them
// (huge=within_size): copying a release in costs about a quarter of the
// kernel CPU of 4 KiB pages, and readers of large files (ANN indexes) miss
// the TLB less. A kernel built without huge pages for shmem refuses the
// option with EINVAL; the tmpfs is then mounted without it.
func mountTmpfs(root string, size int64) error {
	if size <= 0 {
		return fmt.Errorf("cache: memory: size %d: must be positive", size)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("cache: memory: create %s: %w", root, err)
	}
	mounted, err := isTmpfsMount(root)
	if err != nil || mounted {
		return err
	}
	opts := "size=" + strconv.FormatInt(size, 10) + ",mode=0755"
	const flags = unix.MS_NOSUID | unix.MS_NODEV
	err = unix.Mount("tmpfs", root, "tmpfs", flags, opts+","+hugeOption)
	if errors.Is(err, unix.EINVAL) {
		klog.InfoS("cache: memory: the kernel has no huge pages for tmpfs; mounting with 4 KiB pages",
			"root", root, "option", hugeOption)
		err = unix.Mount("tmpfs", root, "tmpfs", flags, opts)
	}
	if err != nil {
		return fmt.Errorf("cache: memory: mount a tmpfs of %d bytes at %s: %w", size, root, err)
	}
	return nil
}

// hugeOption backs the files of the memory tier's tmpfs with huge pages
// where they are large enough to fill them.
const hugeOption = "huge=within_size"

// isTmpfsMount reports whether root is itself the top of a tmpfs mount: a
// tmpfs filesystem whose device differs from its parent's.
func isTmpfsMount(root string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return false, fmt.Errorf("cache: memory: statfs %s: %w", root, err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		return false, nil
	}
	var self, parent unix.Stat_t
	if err := unix.Stat(root, &self); err != nil {
		return false, err
	}
	if err := unix.Stat(filepath.Dir(root), &parent); err != nil {
		return false, err
	}
	return self.Dev != parent.Dev, nil
}
