package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
func linkTree(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// WalkDir hands out src-prefixed paths; slicing the prefix off costs
		// one string per entry, where filepath.Rel/Join would clean and
		// allocate again.
		to := dst + path[len(src):]
		switch {
		case d.IsDir():
			dirs = append(dirs, to)
			return os.Mkdir(to, 0o755) //nolint:gosec // G301: pods of any uid read views; the bind mount makes them read-only.
		case d.Type().IsRegular():
			// G122 (a path component swapped for a symlink mid-walk): only
			// this process writes below the cache root, store/ and views/
			// alike, so no one else can swap one.
			return os.Link(path, to) //nolint:gosec // G122: see above.
		default:
			return fmt.Errorf("%s: not a regular file or directory (%s)", path, d.Type())
		}
	})
	if err != nil {
		return err
	}
	// One journal commit usually covers them all; the later fsyncs find
	// nothing left to write.
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAllSynced is os.MkdirAll whose new directories survive a crash: the
// parent of every directory it creates is fsynced.
func mkdirAllSynced(dir string, perm os.FileMode) error {
	var created []string
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	for _, p := range created {
		if err := syncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}
