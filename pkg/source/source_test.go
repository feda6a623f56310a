package source

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestVersionIn(t *testing.T) {
	tests := []struct {
		segment, before, after string
		want                   string
		ok                     bool
	}{
		{"v1", "", "", "v1", true},
		{"2024-01-02T03-04-05", "", "", "2024-01-02T03-04-05", true},
		{"model-v3.d", "model-", ".d", "v3", true},
		{"model-.d", "model-", ".d", "", false},   // nothing between
		{"model-d", "model-", "-d", "", false},    // before and after overlap
		{"other-v3.d", "model-", ".d", "", false}, // wrong prefix
		{"model-v3.e", "model-", ".d", "", false}, // wrong suffix
		{".hidden", "", "", "", false},            // not a valid version
		{"v 1", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.segment, func(t *testing.T) {
			got, ok := versionIn(tt.segment, tt.before, tt.after)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("versionIn(%q, %q, %q) = %q, %v; want %q, %v", tt.segment, tt.before, tt.after, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestIntersect(t *testing.T) {
	tests := []struct {
		name  string
		lists [][]string
		want  []string
	}{
		{"one list", [][]string{{"a", "b"}}, []string{"a", "b"}},
		{"overlap", [][]string{{"a", "b", "c"}, {"b", "c", "d"}, {"c", "b"}}, []string{"b", "c"}},
		{"disjoint", [][]string{{"a"}, {"b"}}, nil},
		{"duplicates do not count twice", [][]string{{"a", "a"}, {"b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := intersect(tt.lists)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("intersect(%v) = %v, want %v", tt.lists, got, tt.want)
			}
		})
	}
}

func TestForEach(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		n       int
		failAt  int // -1: never
		wantErr error
	}{
		{"all succeed", 100, -1, nil},
		{"none", 0, -1, nil},
		{"first error wins", 100, 10, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const limit = 3
			var inFlight, peak, calls atomic.Int64
			err := forEach(t.Context(), tt.n, limit, func(_ context.Context, i int) error {
				calls.Add(1)
				now := inFlight.Add(1)
				defer inFlight.Add(-1)
				raise(&peak, now)
				if i == tt.failAt {
					return boom
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("forEach() = %v, want %v", err, tt.wantErr)
			}
			if peak.Load() > limit {
				t.Fatalf("%d calls in flight, limit %d", peak.Load(), limit)
			}
			if tt.wantErr == nil && calls.Load() != int64(tt.n) {
				t.Fatalf("%d calls, want %d", calls.Load(), tt.n)
			}
		})
	}
}

func TestForEachCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var calls atomic.Int64
	err := forEach(ctx, 1000, 2, func(ctx context.Context, _ int) error {
		calls.Add(1)
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("forEach() = %v, want context.Canceled", err)
	}
	if n := calls.Load(); n > 2 {
		t.Fatalf("%d calls started after cancellation, want at most 2", n)
	}
}

func TestFileOf(t *testing.T) {
	src := release.Source{Scheme: release.SchemeS3, Bucket: "b", Prefix: "ds/"}
	tests := []struct {
		name    string
		key     string
		size    int64
		want    string // path; "" when skipped
		wantErr bool
	}{
		{"file", "ds/a/b.txt", 3, "a/b.txt", false},
		{"empty file", "ds/empty", 0, "empty", false},
		{"directory marker", "ds/a/", 0, "", false},
		{"prefix marker", "ds/", 0, "", false},
		{"key ending in slash with bytes", "ds/a/", 5, "", true},
		{"empty segment", "ds/a//b", 1, "", true},
		{"dot-dot segment", "ds/a/../b", 1, "", true},
		{"control character", "ds/a\x01b", 1, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := types.Object{Key: aws.String(tt.key), Size: aws.Int64(tt.size), ETag: aws.String(`"e"`)}
			f, ok, err := fileOf(src, obj)
			if (err != nil) != tt.wantErr {
				t.Fatalf("fileOf(%q) error = %v, want error %v", tt.key, err, tt.wantErr)
			}
			if err != nil {
				if want := strconv.Quote(tt.key); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "source: s3://b/ds/") {
					t.Fatalf("error %q does not name the URI and key %s", err, want)
				}
				return
			}
			if ok != (tt.want != "") || f.Path != tt.want {
				t.Fatalf("fileOf(%q) = %+v, %v; want path %q", tt.key, f, ok, tt.want)
			}
			if ok && (f.Size != tt.size || f.ETag != `"e"`) {
				t.Fatalf("fileOf(%q) = %+v; size or ETag not kept", tt.key, f)
			}
		})
	}
}

func TestToHead(t *testing.T) {
	tests := []struct {
		name    string
		reports []checksumReport
		want    []int
	}{
		{"store reports algorithms: only usable ones", []checksumReport{reportNone, reportUsable, reportUnusable, reportUsable}, []int{1, 3}},
		{"store reports nothing: ask every object", []checksumReport{reportNone, reportNone}, []int{0, 1}},
		{"only unusable", []checksumReport{reportUnusable, reportNone}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toHead(tt.reports); !slices.Equal(got, tt.want) {
				t.Fatalf("toHead(%v) = %v, want %v", tt.reports, got, tt.want)
			}
		})
	}
}

func TestUsableChecksum(t *testing.T) {
	const (
		crc64 = "AAAAAAAAAAE=" // 8 bytes
		crc32 = "AAAAAQ=="     // 4 bytes
		sha   = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	)
	tests := []struct {
		name    string
		out     s3.HeadObjectOutput
		want    *release.Checksum
		wantErr bool
	}{
		{"none", s3.HeadObjectOutput{}, nil, false},
		{"crc64nvme preferred", s3.HeadObjectOutput{ChecksumCRC64NVME: aws.String(crc64), ChecksumSHA256: aws.String(sha)},
			&release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: crc64}, false},
		{"sha256 over crc32c", s3.HeadObjectOutput{ChecksumSHA256: aws.String(sha), ChecksumCRC32C: aws.String(crc32)},
			&release.Checksum{Algorithm: release.ChecksumSHA256, Value: sha}, false},
		{"crc32c", s3.HeadObjectOutput{ChecksumCRC32C: aws.String(crc32), ChecksumType: types.ChecksumTypeFullObject},
			&release.Checksum{Algorithm: release.ChecksumCRC32C, Value: crc32}, false},
		{"crc32 is not recorded", s3.HeadObjectOutput{ChecksumCRC32: aws.String(crc32)}, nil, false},
		{"composite by type", s3.HeadObjectOutput{ChecksumCRC32C: aws.String(crc32), ChecksumType: types.ChecksumTypeComposite}, nil, false},
		{"composite by value", s3.HeadObjectOutput{ChecksumSHA256: aws.String(sha + "-3")}, nil, false},
		{"malformed", s3.HeadObjectOutput{ChecksumCRC64NVME: aws.String(crc32)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := usableChecksum(&tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("usableChecksum() error = %v, want error %v", err, tt.wantErr)
			}
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Fatalf("usableChecksum() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// raise sets m to v when v is larger.
func raise(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

func TestManifestOf(t *testing.T) {
	src := release.Source{Scheme: release.SchemeS3, Bucket: "b", Prefix: "p/"}
	tests := []struct {
		name    string
		paths   []string
		want    []string
		wantErr string
	}{
		{"sorted by whole path", []string{"a/x", "a-b", "a.c"}, []string{"a-b", "a.c", "a/x"}, ""},
		// S3 holds both keys; no directory can.
		{"file is also a folder", []string{"a/b", "a"}, nil, `is a file but also a directory of files[1] "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []release.File
			for _, p := range tt.paths {
				files = append(files, release.File{Path: p, Size: 1})
			}
			m, err := manifestOf(src, files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "source: s3://b/p/: ") {
					t.Fatalf("manifestOf() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range m.Files {
				got = append(got, f.Path)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("manifestOf() paths = %q, want %q", got, tt.want)
			}
		})
	}
}
