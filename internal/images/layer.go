// Package images builds Hydra's container images without a container
// engine: each image is one deterministic layer written from Go, saved as a
// docker-archive tarball that `ctr images import` and `docker load` accept.
package images

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch is the modification time of every entry and the creation time of
// every image: a fixed instant, so the same inputs give the same digest.
var Epoch = time.Unix(0, 0).UTC()

// Owner is a numeric uid:gid pair for a tar entry.
type Owner struct{ UID, GID int }

// Root and NonRoot are the two users of the images' /etc/passwd.
var (
	Root    = Owner{0, 0}
	NonRoot = Owner{65532, 65532}
)

// entry is one file system object of a layer.
type entry struct {
	kind  byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode  int64
	owner Owner
	data  []byte // regular files
	link  string // symlinks
}

// Layer collects a root file system and writes it as a tar whose bytes
// depend only on its contents: entries sorted by path, fixed mtimes,
// numeric owners and no user or group names.
type Layer struct {
	entries map[string]entry
}

// NewLayer returns an empty layer.
func NewLayer() *Layer { return &Layer{entries: map[string]entry{}} }

// Dir adds a directory (and its missing parents, 0755 root).
func (l *Layer) Dir(p string, mode int64, o Owner) {
	l.put(p, entry{kind: tar.TypeDir, mode: mode, owner: o})
}

// File adds a regular file with the given contents.
func (l *Layer) File(p string, mode int64, o Owner, data []byte) {
	l.put(p, entry{kind: tar.TypeReg, mode: mode, owner: o, data: data})
}

// HostFile adds a copy of the host file src at p.
func (l *Layer) HostFile(p string, mode int64, o Owner, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("images: add %s to a layer: %w", p, err)
	}
	l.File(p, mode, o, data)
	return nil
}

// Symlink adds a symbolic link at p pointing at target.
func (l *Layer) Symlink(p, target string) {
	l.put(p, entry{kind: tar.TypeSymlink, mode: 0o777, owner: Root, link: target})
}

// put stores e at the clean absolute path p, creating missing parents.
func (l *Layer) put(p string, e entry) {
	p = path.Clean("/" + p)
	for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
		if _, ok := l.entries[dir]; !ok {
			l.entries[dir] = entry{kind: tar.TypeDir, mode: 0o755, owner: Root}
		}
	}
	l.entries[p] = e
}

// Paths returns the layer's paths in the order Tar writes them.
func (l *Layer) Paths() []string {
	paths := make([]string, 0, len(l.entries))
	for p := range l.entries {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// Tar writes the layer as an uncompressed tar. Names are relative
// ("etc/passwd", directories with a trailing slash), as image layers are.
func (l *Layer) Tar() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range l.Paths() {
		if err := writeEntry(tw, p, l.entries[p]); err != nil {
			return nil, fmt.Errorf("images: tar %s: %w", p, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("images: close the layer's tar: %w", err)
	}
	return buf.Bytes(), nil
}

func writeEntry(tw *tar.Writer, p string, e entry) error {
	name := strings.TrimPrefix(p, "/")
	if e.kind == tar.TypeDir {
		name += "/"
	}
	hdr := &tar.Header{
		Typeflag: e.kind,
		Name:     name,
		Linkname: e.link,
		Mode:     e.mode,
		Uid:      e.owner.UID,
		Gid:      e.owner.GID,
		Size:     int64(len(e.data)),
		ModTime:  Epoch,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(e.data)
	return err
}

// v1Layer returns the layer as a gzip-compressed v1.Layer.
func (l *Layer) v1Layer() (v1.Layer, error) {
	data, err := l.Tar()
	if err != nil {
		return nil, err
	}
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	// Compress once: the digest, the size and the writer all read it.
	layer, err := tarball.LayerFromOpener(opener, tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("images: make a layer: %w", err)
	}
	return layer, nil
}
