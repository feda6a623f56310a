package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// scratch holds the two RAM filesystems of a run: MinIO's data and the
// contenders' destination. Both are tmpfs so that neither a disk nor the
// page cache's writeback takes part in what is measured.
type scratch struct {
	root             string
	minioDir, dstDir string
	// how says where the filesystems came from, for the report.
	how     string
	mounted []string
	created bool // root is ours to remove
}

// newScratch prepares the filesystems. With dir set, dir/minio and dir/dst
// are used as they are (they should be tmpfs mounts, and empty: MinIO's
// state from an earlier run is sealed with other credentials). Otherwise, as root,
// two tmpfs are mounted under a new temporary directory, sized to hold
// minioBytes and dstBytes; as any other user, directories under /dev/shm
// (one tmpfs shared by both) are used.
func newScratch(dir string, minioBytes, dstBytes int64) (*scratch, error) {
	if dir != "" {
		s := &scratch{root: dir, minioDir: filepath.Join(dir, "minio"), dstDir: filepath.Join(dir, "dst"), how: "given directories"}
		if err := s.mkdirs(); err != nil {
			return nil, err
		}
		return s, s.checkEmpty()
	}
	if os.Geteuid() != 0 {
		root, err := os.MkdirTemp("/dev/shm", "hydra-bench-")
		if err != nil {
			return nil, err
		}
		s := &scratch{root: root, minioDir: filepath.Join(root, "minio"), dstDir: filepath.Join(root, "dst"), how: "/dev/shm (not root: no own tmpfs)", created: true}
		return s, s.mkdirs()
	}
	root, err := os.MkdirTemp("", "hydra-bench-")
	if err != nil {
		return nil, err
	}
	s := &scratch{root: root, minioDir: filepath.Join(root, "minio"), dstDir: filepath.Join(root, "dst"), how: "own tmpfs mounts", created: true}
	if err := s.mkdirs(); err != nil {
		return nil, err
	}
	for _, m := range []struct {
		dir   string
		bytes int64
	}{{s.minioDir, minioBytes}, {s.dstDir, dstBytes}} {
		opts := fmt.Sprintf("size=%d,mode=0700", m.bytes)
		if err := unix.Mount("tmpfs", m.dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return nil, errors.Join(fmt.Errorf("mount tmpfs on %s: %w", m.dir, err), s.close())
		}
		s.mounted = append(s.mounted, m.dir)
	}
	return s, nil
}

func (s *scratch) mkdirs() error {
	for _, d := range []string{s.minioDir, s.dstDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	return nil
}

func (s *scratch) checkEmpty() error {
	for _, d := range []string{s.minioDir, s.dstDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		if len(entries) > 0 {
			return fmt.Errorf("%s is not empty (left from an earlier run?); empty it first", d)
		}
	}
	return nil
}

// isTmpfs reports whether dir is on a tmpfs.
func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// close unmounts what newScratch mounted and removes the directories.
func (s *scratch) close() error {
	var errs []error
	for _, d := range s.mounted {
		if err := unix.Unmount(d, 0); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", d, err))
		}
	}
	s.mounted = nil
	if len(errs) == 0 && s.created {
		errs = append(errs, os.RemoveAll(s.root)) //nolint:gosec // G703: a directory we created
	}
	return errors.Join(errs...)
}
