package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hydra-csi/hydra/pkg/release"
)

// LocalReader reads byte ranges of file:// datasets with positioned reads
// (pread), so concurrent parts of one file share nothing but the page
// cache. A directory has no ETags: a changed size is all it can detect; the
// cache verifies the checksums that listing recorded.
type LocalReader struct{}

// NewLocalReader returns the file:// Reader.
func NewLocalReader() *LocalReader { return &LocalReader{} }

// ReadRange implements Reader. Local reads are not retried: a failing disk
// does not heal in a backoff.
func (l *LocalReader) ReadRange(ctx context.Context, src release.Source, f release.File, off, n int64, w io.Writer) error {
	if err := checkLocal(src); err != nil {
		return err
	}
	if err := checkRange(src, f, off, n); err != nil || n == 0 {
		return err
	}
	name := src.String() + f.Path
	root, rel, err := localPath(src, f)
	if err != nil {
		return err
	}
	fd, err := openLocal(root, rel, name, f.Size)
	if err != nil {
		return err
	}
	defer func() { _ = fd.Close() }() // only read: a Close error loses nothing
	written, err := copyN(w, ctxReader{ctx: ctx, r: io.NewSectionReader(fd, off, n)}, n)
	var we *writeError
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &we):
		return fmt.Errorf("source: %s: bytes %d-%d: %w", name, off, off+n-1, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("source: %s: %w: it ended after %d of the bytes %d-%d", name, ErrChanged, written, off, off+n-1)
	}
	return fmt.Errorf("source: %s: read bytes %d-%d: %w", name, off, off+n-1, err)
}

// localPath splits f's location into the dataset directory and a path
// below it. Manifest paths are validated to be relative and clean; the
// check that the joined path stays below the directory is a second line,
// since a path that escaped would read any file of the node as root.
func localPath(src release.Source, f release.File) (root, rel string, err error) {
	root = filepath.Clean(src.Prefix)
	full := filepath.Join(root, filepath.FromSlash(f.Path))
	rel, err = filepath.Rel(root, full)
	if err != nil || !filepath.IsLocal(rel) {
		return "", "", fmt.Errorf("source: %s: path %q leaves the dataset directory", src, f.Path)
	}
	return root, rel, nil
}

// openLocal opens rel below root and checks it is a regular file of the
// manifest's size. os.OpenInRoot also refuses symbolic links that lead out
// of root, which a path check cannot see: listing refused links, but one
// may have been planted since.
func openLocal(root, rel, name string, size int64) (*os.File, error) {
	fd, err := os.OpenInRoot(root, rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("source: %s: %w: %w", name, ErrMissing, err)
	}
	if err != nil {
		return nil, fmt.Errorf("source: %s: %w", name, err)
	}
	info, err := fd.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("source: %s: %w", name, err)
	case !info.Mode().IsRegular():
		err = fmt.Errorf("source: %s: %w: not a regular file any more (mode %v)", name, ErrChanged, info.Mode().Type())
	case info.Size() != size:
		err = fmt.Errorf("source: %s: %w: %d bytes now, manifest says %d", name, ErrChanged, info.Size(), size)
	}
	if err != nil {
		_ = fd.Close() // only opened and stat'ed
		return nil, err
	}
	return fd, nil
}
