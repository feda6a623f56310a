package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// localDataset writes files (path → content) into a new directory and
// returns its source and a Reader for it, through a ReaderMux as the cache
// will use it.
func localDataset(t *testing.T, files map[string][]byte) (release.Source, source.Reader) {
	t.Helper()
	dir := t.TempDir()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		mustDo(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mustDo(t, os.WriteFile(full, b, 0o644))
	}
	return fileURI(t, dir), source.NewReaderMux(source.FetchOptions{})
}

func localFile(p string, b []byte) release.File { return release.File{Path: p, Size: int64(len(b))} }

func TestLocalReadRange(t *testing.T) {
	big := body("local", 1<<20+333)
	src, r := localDataset(t, map[string][]byte{"dir/big.bin": big, "empty": nil})
	size := int64(len(big))
	for _, c := range [][2]int64{{0, 10}, {256<<10 - 1, 300 << 10}, {size - 77, 77}, {0, size}, {0, 0}, {size, 0}} {
		w := newRangeWriter(c[1])
		if err := r.ReadRange(t.Context(), src, localFile("dir/big.bin", big), c[0], c[1], w); err != nil {
			t.Fatalf("range %v: %v", c, err)
		}
		w.checkComplete(t, big[c[0]:c[0]+c[1]])
	}
	if err := r.ReadRange(t.Context(), src, localFile("empty", nil), 0, 0, newRangeWriter(0)); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestLocalReadRangeErrors(t *testing.T) {
	secret := []byte("the node's secrets")
	outside := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(outside, "secret"), secret, 0o600))
	data := body("data", 4096)
	src, _ := localDataset(t, map[string][]byte{"a.bin": data})
	r := source.NewLocalReader()
	mustDo(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(src.Prefix, "link")))
	mustDo(t, os.Mkdir(filepath.Join(src.Prefix, "sub"), 0o755))
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name     string
		ctx      context.Context
		src      release.Source // when not the dataset's
		f        release.File
		off, n   int64
		w        *rangeWriter
		sentinel error
		want     []string
	}{
		{"size differs", t.Context(), release.Source{}, release.File{Path: "a.bin", Size: 4000}, 0, 10, nil, source.ErrChanged,
			[]string{src.Prefix + "a.bin", "4096 bytes now, manifest says 4000"}},
		{"missing", t.Context(), release.Source{}, release.File{Path: "gone", Size: 10}, 0, 10, nil, source.ErrMissing,
			[]string{src.Prefix + "gone"}},
		{"directory in place of a file", t.Context(), release.Source{}, release.File{Path: "sub", Size: 10}, 0, 10, nil, source.ErrChanged,
			[]string{src.Prefix + "sub", "not a regular file"}},
		{"dot-dot path", t.Context(), release.Source{}, release.File{Path: "../" + filepath.Base(outside) + "/secret", Size: int64(len(secret))}, 0, 5, nil, nil,
			[]string{src.String()}},
		{"symbolic link out of the dataset", t.Context(), release.Source{}, localFile("link", secret), 0, 5, nil, nil,
			[]string{src.Prefix + "link"}},
		{"range past the end", t.Context(), release.Source{}, localFile("a.bin", data), 4000, 100, nil, nil,
			[]string{"outside the file"}},
		{"writer fails", t.Context(), release.Source{}, localFile("a.bin", data), 0, 4096, &rangeWriter{buf: make([]byte, 4096), failAt: 1}, errWriterFull,
			[]string{src.Prefix + "a.bin", "disk full"}},
		{"context cancelled", cancelled, release.Source{}, localFile("a.bin", data), 0, 4096, nil, context.Canceled, nil},
		{"not a file:// source", t.Context(), release.Source{Scheme: release.SchemeS3, Bucket: "bkt", Prefix: "p/"}, localFile("a.bin", data), 0, 10, nil, nil,
			[]string{"not a file:// URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			if w == nil {
				w = newRangeWriter(max(tt.n, 0))
			}
			s := tt.src
			if s.Scheme == "" {
				s = src
			}
			err := r.ReadRange(tt.ctx, s, tt.f, tt.off, tt.n, w)
			if err == nil {
				t.Fatalf("no error; writer got %q", w.buf[:w.off])
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.sentinel)
			}
			wantError(t, err, tt.want)
			if w.off > 0 {
				t.Errorf("writer got %d bytes, want none", w.off)
			}
		})
	}
}

func TestReaderMuxUnknownScheme(t *testing.T) {
	m := source.NewReaderMux(source.FetchOptions{})
	err := m.ReadRange(t.Context(), release.Source{Scheme: "ftp", Prefix: "/x/"}, release.File{Path: "a", Size: 1}, 0, 1, newRangeWriter(1))
	wantError(t, err, []string{`unknown scheme "ftp"`})
}
