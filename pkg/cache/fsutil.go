package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// linkTree makes dst a copy of the directory tree src in which every regular
// file is a hardlink to the file in src: no data is copied, and a reader of
// dst sees the very inodes of src. Directories are created 0755 (pods read
// views as any user; the bind mount is what makes them read-only), files keep
// the mode of their inode. Anything but directories and regular files is
// refused: a stored release holds nothing else, and a symlink could point a
// pod outside its view.
//
// dst must not exist. On error a partial dst is left behind; callers build
// under a temp name and remove it. On success every new directory has been
// fsynced, so a later rename of dst publishes entries that survive a crash.
//
// A link costs a journal transaction on ext4 or XFS (tens of µs on a
// virtual disk), which makes a view of 1,000 files cost tens of ms when done
// one after the other. So the walk only creates the directories, in order,
// and collects the files; the links and then the fsyncs run on a few
// goroutines (workers; 1: on the caller's), by chunks of one directory,
// each through directory fds (linkat) so that no path is resolved twice.
func linkTree(src, dst string, workers int) error {
	var dirs []string         // relative to src and dst; "" is the top
	index := map[string]int{} // into dirs
	var chunks []linkJob      // the files to link
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// WalkDir hands out src-prefixed paths; slicing the prefix off costs
		// one string per entry, where filepath.Rel/Join would clean and
		// allocate again.
		rel := path[len(src):]
		switch {
		case d.IsDir():
			index[rel] = len(dirs)
			dirs = append(dirs, rel)
			return os.Mkdir(dst+rel, 0o755) //nolint:gosec // G301: pods of any uid read views; the bind mount makes them read-only.
		case d.Type().IsRegular():
			dir := index[rel[:len(rel)-len(d.Name())-1]] // WalkDir enters a directory before its files
			if n := len(chunks); n == 0 || chunks[n-1].dir != dir || len(chunks[n-1].names) == linkChunk {
				chunks = append(chunks, linkJob{dir: dir})
			}
			chunks[len(chunks)-1].names = append(chunks[len(chunks)-1].names, d.Name())
			return nil
		default:
			return fmt.Errorf("%s: not a regular file or directory (%s)", path, d.Type())
		}
	})
	if err != nil {
		return err
	}
	// G122 (a path component swapped for a symlink mid-walk): only this
	// process writes below the cache root, store/ and views/ alike, so no
	// one else can swap one.
	err = parallel(workers, len(chunks), func(i int) error {
		c := chunks[i]
		return linkNames(src+dirs[c.dir], dst+dirs[c.dir], c.names)
	})
	if err != nil {
		return err
	}
	// One journal commit usually covers them all; the later fsyncs find
	// little left to write.
	return parallel(workers, len(dirs), func(i int) error { return syncDir(dst + dirs[i]) })
}

// linkChunk is the most files one goroutine of linkTree links in a row, so
// that a directory of 10,000 files is spread too.
const linkChunk = 128

// linkJob is a run of files of one directory of linkTree; dir indexes its
// dirs.
type linkJob struct {
	dir   int
	names []string
}

// linkNames hardlinks fromDir/name as toDir/name for each name.
func linkNames(fromDir, toDir string, names []string) error {
	from, err := unix.Open(fromDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: fromDir, Err: err}
	}
	defer unix.Close(from) //nolint:errcheck // read-only fd
	to, err := unix.Open(toDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: toDir, Err: err}
	}
	defer unix.Close(to) //nolint:errcheck // read-only fd
	for _, name := range names {
		if err := unix.Linkat(from, name, to, name, 0); err != nil {
			return &os.LinkError{Op: "link", Old: filepath.Join(fromDir, name), New: filepath.Join(toDir, name), Err: err}
		}
	}
	return nil
}

// linkWorkers is how many goroutines of linkTree make a view's links or
// fsyncs at once. Links and fsyncs wait on the filesystem's journal more
// than on a CPU, so a few more than the cores keep it busy; more only
// contend.
const linkWorkers = 4

// parallel calls do(0..n-1) on up to workers goroutines and returns the
// first error; after one, no new call starts. With one worker the calls
// run on the caller's goroutine.
func parallel(workers, n int, do func(int) error) error {
	if workers <= 1 {
		for i := range n {
			if err := do(i); err != nil {
				return err
			}
		}
		return nil
	}
	var g errgroup.Group
	g.SetLimit(workers)
	var failed atomic.Bool
	for i := range n {
		if failed.Load() {
			break
		}
		g.Go(func() error {
			err := do(i)
			if err != nil {
				failed.Store(true)
			}
			return err
		})
	}
	return g.Wait()
}

// mkdirAllSynced is os.MkdirAll whose new directories survive a crash: the
// parent of every directory it creates is fsynced.
func mkdirAllSynced(dir string, perm os.FileMode) error {
	parents, err := mkdirAll(dir, perm)
	if err != nil {
		return err
	}
	for _, p := range parents {
		if err := syncDir(p); err != nil {
			return err
		}
	}
	return nil
}

// syncPaths fsyncs files and directories, a few at a time: on a journaling
// filesystem the first fsync commits what the others would, and they
// return as soon as that commit is done.
func syncPaths(paths []string) error {
	return parallel(linkWorkers, len(paths), func(i int) error { return syncDir(paths[i]) })
}

// mkdirAll is os.MkdirAll that returns the parents of the directories it
// created: what to fsync for them to survive a crash.
func mkdirAll(dir string, perm os.FileMode) ([]string, error) {
	var created []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return nil, err
	}
	parents := make([]string, len(created))
	for i, p := range created {
		parents[i] = filepath.Dir(p)
	}
	return parents, nil
}
