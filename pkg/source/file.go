package source

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"syscall"

	"github.com/hydra-csi/hydra/pkg/release"
)

// maxHashBuffer caps the read buffer of one file hash.
const maxHashBuffer = 1 << 20

// Local lists datasets in local directories (file:// URIs).
//
// A directory has no ETags or stored checksums, and size+mtime says nothing
// about the bytes of a copy, so List reads every file and records its
// SHA-256: that is what makes a file:// dataset verifiable on the nodes. It
// costs a full read of the tree, spread over Options.Concurrency workers.
type Local struct {
	concurrency int
}

// NewLocal returns the file:// backend.
func NewLocal(opts Options) *Local {
	n := opts.Concurrency
	if n <= 0 {
		// Hashing is CPU-bound for large files and I/O-bound for small
		// ones; a few workers beyond the CPUs cover both.
		n = max(4, runtime.GOMAXPROCS(0))
	}
	return &Local{concurrency: n}
}

// List implements Lister.
func (l *Local) List(ctx context.Context, src release.Source) (release.Manifest, error) {
	if err := checkLocal(src); err != nil {
		return release.Manifest{}, err
	}
	files, err := walkFiles(ctx, src.Prefix)
	if err != nil {
		return release.Manifest{}, fmt.Errorf("source: %s: %w", src, err)
	}
	if len(files) == 0 {
		return release.Manifest{}, fmt.Errorf("source: %s: no files under directory: %w", src, ErrEmpty)
	}
	err = forEach(ctx, len(files), l.concurrency, func(ctx context.Context, i int) error {
		return hashFile(ctx, src.Prefix, &files[i])
	})
	if err != nil {
		return release.Manifest{}, fmt.Errorf("source: %s: %w", src, err)
	}
	// WalkDir goes directory by directory ("a/x" before "a-b"); manifestOf
	// sorts by the whole path.
	return manifestOf(src, files)
}

// walkFiles returns every regular file below root with its path and size.
// root ends in '/', so a root that is itself a symlink to a directory is
// followed (the kernel resolves "link/"); links inside the tree are not.
func walkFiles(ctx context.Context, root string) ([]release.File, error) {
	var files []release.File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		f, err := localFile(root, p, d)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// localFile turns one walked entry into a manifest entry without checksum.
// Symlinks are refused rather than followed: a manifest must describe real
// bytes inside the dataset, and a link may point anywhere, or change.
func localFile(root, p string, d fs.DirEntry) (release.File, error) {
	switch t := d.Type(); {
	case t&fs.ModeSymlink != 0:
		return release.File{}, fmt.Errorf("%s is a symbolic link: a manifest lists regular files only; copy the target in its place", p)
	case !t.IsRegular():
		return release.File{}, fmt.Errorf("%s is not a regular file (mode %v)", p, t)
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return release.File{}, err
	}
	rel = filepath.ToSlash(rel)
	if err := release.ValidatePath(rel); err != nil {
		return release.File{}, fmt.Errorf("%s cannot be a file path: %w", p, err)
	}
	info, err := d.Info()
	if err != nil {
		return release.File{}, err
	}
	return release.File{Path: rel, Size: info.Size()}, nil
}

// hashFile reads f and sets its Checksum (SHA-256) and ETag (the first 16
// bytes of that digest in hex, quoted like an HTTP entity tag). A file whose
// size or modification time moved while it was read is refused: its
// manifest entry would describe bytes that no longer exist.
func hashFile(ctx context.Context, root string, f *release.File) error {
	p := filepath.Join(root, filepath.FromSlash(f.Path))
	fd, err := os.Open(p)
	if err != nil {
		return err
	}
	err = hashOpen(ctx, fd, p, f)
	if cerr := fd.Close(); err == nil {
		err = cerr
	}
	return err
}

// hashOpen is hashFile on the open file fd, read from its start.
func hashOpen(ctx context.Context, fd *os.File, p string, f *release.File) error {
	before, err := fd.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	buf := make([]byte, min(max(f.Size, 512), maxHashBuffer))
	n, err := io.CopyBuffer(h, ctxReader{ctx: ctx, r: fd}, buf)
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	after, err := fd.Stat()
	if err != nil {
		return err
	}
	if n != f.Size || after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%s changed while listing (%d bytes when walked, %d read); publish again once writes are done", p, f.Size, n)
	}
	sum := h.Sum(nil)
	f.Checksum = &release.Checksum{Algorithm: release.ChecksumSHA256, Value: base64.StdEncoding.EncodeToString(sum)}
	f.ETag = `"` + hex.EncodeToString(sum[:16]) + `"`
	return nil
}

// ctxReader stops a long read (a multi-GB file) when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Versions implements Lister: the versions are the directories next to the
// placeholder whose names fit around it, kept when the location they resolve
// to holds at least one regular file.
func (l *Local) Versions(ctx context.Context, src release.Source) ([]string, error) {
	dir, before, after, ok := src.SplitAtPlaceholder()
	if src.Scheme != release.SchemeFile || !ok {
		return nil, fmt.Errorf("source: %s: want a file:// URI with a %s placeholder", src, release.VersionPlaceholder)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("source: %s: read versions: %w", src, err)
	}
	var versions []string
	for _, e := range entries {
		// Only real directories: a "latest -> v3" link is an alias, and as
		// a version string it could even outrank the real ones.
		if !e.IsDir() {
			continue
		}
		v, ok := versionIn(e.Name(), before, after)
		if !ok {
			continue
		}
		has, err := hasRegularFile(ctx, src.WithVersion(v).Prefix)
		if err != nil {
			return nil, fmt.Errorf("source: %s: version %s: %w", src, v, err)
		}
		if has {
			versions = append(versions, v)
		}
	}
	slices.SortFunc(versions, release.CompareVersions)
	return versions, nil
}

// hasRegularFile reports whether the tree at root holds a regular file; a
// root that is missing or not a directory (the path after the placeholder
// does not exist yet) holds none.
func hasRegularFile(ctx context.Context, root string) (bool, error) {
	found := false
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	return found, err
}

func checkLocal(src release.Source) error {
	if src.Scheme != release.SchemeFile {
		return fmt.Errorf("source: %s: not a file:// URI", src)
	}
	return unresolved(src)
}
