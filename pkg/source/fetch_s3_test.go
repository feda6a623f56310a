package source_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

const fetchBucket = "data"

// fetchEnv is a MinIO holding a few objects under s3://data/ds/, reached
// through the standard AWS environment.
type fetchEnv struct {
	m       *testenv.MinIO
	src     release.Source
	objects map[string][]byte // path below src → content
}

func startFetchEnv(t *testing.T) *fetchEnv {
	t.Helper()
	m := testenv.StartMinIO(t)
	useMinIO(t, m)
	m.CreateBucket(t, fetchBucket)
	e := &fetchEnv{m: m, src: s3URI(t, "s3://"+fetchBucket+"/ds/"), objects: map[string][]byte{
		// Not a multiple of the 256 KiB copy buffer, nor of anything else.
		"big.bin":   body("big", 3<<20+12345),
		"small.txt": []byte("ten bytes!"),
		"empty":     {},
	}}
	for p, b := range e.objects {
		m.Put(t, fetchBucket, e.src.Prefix+p, b)
	}
	return e
}

// file is the manifest entry of an uploaded object.
func (e *fetchEnv) file(p string) release.File {
	b := e.objects[p]
	return release.File{Path: p, Size: int64(len(b)), ETag: md5ETag(b)}
}

// reader returns an S3 Reader whose requests go through a new fault proxy,
// with backoffs short enough for tests.
func (e *fetchEnv) reader(t *testing.T, opts source.FetchOptions) (source.Reader, *testenv.FaultProxy) {
	t.Helper()
	p := testenv.StartFaultProxy(t, e.m.Endpoint)
	opts.Endpoint = p.URL
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff, opts.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	r, err := source.NewReader(t.Context(), release.SchemeS3, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

func TestS3ReadRange(t *testing.T) {
	e := startFetchEnv(t)
	r, proxy := e.reader(t, source.FetchOptions{})
	big, small := e.objects["big.bin"], e.objects["small.txt"]
	size := int64(len(big))
	tests := []struct {
		name string
		path string
		off  int64
		n    int64
	}{
		{"start", "big.bin", 0, 1000},
		{"middle across buffers", "big.bin", 256<<10 - 7, 600 << 10},
		{"end", "big.bin", size - 4321, 4321},
		{"last byte", "big.bin", size - 1, 1},
		{"whole object", "big.bin", 0, size},
		{"whole small object", "small.txt", 0, int64(len(small))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newRangeWriter(tt.n)
			if err := r.ReadRange(t.Context(), e.src, e.file(tt.path), tt.off, tt.n, w); err != nil {
				t.Fatal(err)
			}
			w.checkComplete(t, e.objects[tt.path][tt.off:tt.off+tt.n])
		})
	}

	t.Run("empty ranges send no request", func(t *testing.T) {
		before := proxy.Requests()
		for _, c := range []struct {
			path string
			off  int64
		}{{"big.bin", 0}, {"big.bin", 4096}, {"big.bin", size}, {"empty", 0}} {
			w := newRangeWriter(0)
			if err := r.ReadRange(t.Context(), e.src, e.file(c.path), c.off, 0, w); err != nil || w.writes != 0 {
				t.Errorf("%s at %d: err %v, %d writes; want nil and none", c.path, c.off, err, w.writes)
			}
		}
		if got := proxy.Requests() - before; got != 0 {
			t.Errorf("%d requests for empty ranges, want 0", got)
		}
	})

	t.Run("ranges outside the file are refused", func(t *testing.T) {
		before := proxy.Requests()
		for _, c := range [][2]int64{{-1, 10}, {0, -1}, {size, 1}, {size - 10, 11}, {1, 1<<63 - 1}} {
			err := r.ReadRange(t.Context(), e.src, e.file("big.bin"), c[0], c[1], newRangeWriter(0))
			wantError(t, err, []string{"outside the file", "big.bin"})
		}
		if got := proxy.Requests() - before; got != 0 {
			t.Errorf("%d requests for invalid ranges, want 0", got)
		}
	})

	t.Run("missing object", func(t *testing.T) {
		f := release.File{Path: "gone.bin", Size: 10, ETag: `"0123"`}
		err := r.ReadRange(t.Context(), e.src, f, 0, 10, newRangeWriter(10))
		if !errors.Is(err, source.ErrMissing) || errors.Is(err, source.ErrChanged) {
			t.Errorf("err = %v, want ErrMissing", err)
		}
		wantError(t, err, []string{"s3://data/ds/gone.bin", "NoSuchKey"})
	})

	t.Run("default endpoint from the environment, through a ReaderMux", func(t *testing.T) {
		mux := source.NewReaderMux(source.FetchOptions{Requests: 2})
		w := newRangeWriter(100)
		if err := mux.ReadRange(t.Context(), e.src, e.file("big.bin"), 1000, 100, w); err != nil {
			t.Fatal(err)
		}
		w.checkComplete(t, big[1000:1100])
	})
}

// TestS3ReadRangeChanged overwrites objects after their manifest entry was
// taken: with an ETag, If-Match refuses them (412); without one, the size
// in Content-Range gives the change away.
func TestS3ReadRangeChanged(t *testing.T) {
	e := startFetchEnv(t)
	r, proxy := e.reader(t, source.FetchOptions{})
	v1, v2, v3 := body("v1", 5000), body("v2", 5000), body("v3", 6000)
	key := e.src.Prefix + "changing.bin"
	e.m.Put(t, fetchBucket, key, v1)
	withETag := release.File{Path: "changing.bin", Size: int64(len(v1)), ETag: md5ETag(v1)}
	withoutETag := release.File{Path: "changing.bin", Size: int64(len(v1))}

	w := newRangeWriter(100)
	if err := r.ReadRange(t.Context(), e.src, withETag, 100, 100, w); err != nil {
		t.Fatalf("before the overwrite: %v", err)
	}
	w.checkComplete(t, v1[100:200])

	tests := []struct {
		name    string
		content []byte
		f       release.File
		want    []string
	}{
		{"same size, new ETag", v2, withETag, []string{"s3://data/ds/changing.bin", withETag.ETag, "PreconditionFailed"}},
		{"new size, no ETag recorded", v3, withoutETag, []string{"s3://data/ds/changing.bin", "6000 bytes now, manifest says 5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.m.Put(t, fetchBucket, key, tt.content)
			before := proxy.Requests()
			w := newRangeWriter(100)
			err := r.ReadRange(t.Context(), e.src, tt.f, 100, 100, w)
			if !errors.Is(err, source.ErrChanged) {
				t.Fatalf("err = %v, want ErrChanged", err)
			}
			wantError(t, err, tt.want)
			if w.writes != 0 {
				t.Errorf("%d writes, want none", w.writes)
			}
			if got := proxy.Requests() - before; got != 1 {
				t.Errorf("%d requests, want 1 (no retry)", got)
			}
		})
	}
}

func TestS3ReadRangeWrongScheme(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	r, err := source.NewS3Reader(t.Context(), source.FetchOptions{Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	src := release.Source{Scheme: release.SchemeFile, Prefix: "/tmp/x/"}
	err = r.ReadRange(t.Context(), src, release.File{Path: "a", Size: 1}, 0, 1, newRangeWriter(1))
	if err == nil || !strings.Contains(err.Error(), "not an s3:// URI") {
		t.Errorf("err = %v, want a refusal of the file:// source", err)
	}
}
