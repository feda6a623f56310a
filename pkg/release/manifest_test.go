package release_test

import (
	"encoding/base64"
	"math"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestValidatePath(t *testing.T) {
	// 127 segments of "abcdefg/" plus one more segment: exactly 1024 or
	// 1025 bytes, with no segment near its own limit.
	path1024 := strings.Repeat("abcdefg/", 127) + "abcdefgh"
	path1025 := strings.Repeat("abcdefg/", 127) + "abcdefghi"
	tests := []struct {
		name   string
		in     string
		reason string // empty: the path must be accepted
	}{
		{name: "single file", in: "a"},
		{name: "nested", in: "ann/shards/shard-0003.bin"},
		{name: "spaces", in: "dir with spaces/file name.bin"},
		{name: "unicode", in: "données/été.txt"},
		{name: "dots inside a name", in: "a..b"},
		{name: "dots at both ends of a name", in: "..a/b.."},
		{name: "three dots", in: "..."},
		{name: "hidden file", in: ".hidden"},
		{name: "hidden dir", in: "a/.hidden/b"},
		{name: "leading dash", in: "-rf"},
		{name: "backslash is a plain byte", in: `a\b`},
		{name: "no-break space is not a control", in: "a\u00a0b"},
		{name: "1024 bytes", in: path1024},
		{name: "255-byte segment", in: "d/" + strings.Repeat("x", 255)},
		{name: "empty", in: "", reason: "must not be empty"},
		{name: "absolute", in: "/abs", reason: "must be relative"},
		{name: "root", in: "/", reason: "must be relative"},
		{name: "dot dot inside", in: "a/../b", reason: `".." segments`},
		{name: "dot dot", in: "..", reason: `".." segments`},
		{name: "dot dot last", in: "a/..", reason: `".." segments`},
		{name: "leading dot slash", in: "./a", reason: `"." segments`},
		{name: "dot inside", in: "a/./b", reason: `"." segments`},
		{name: "dot", in: ".", reason: `"." segments`},
		{name: "double slash", in: "a//b", reason: "empty segments"},
		{name: "trailing slash", in: "a/", reason: "empty segments"},
		{name: "NUL", in: "a\x00b", reason: "control characters"},
		{name: "newline", in: "a\nb", reason: "control characters"},
		{name: "tab", in: "a\tb", reason: "control characters"},
		{name: "DEL", in: "\x7f", reason: "control characters"},
		{name: "C1 control NEL", in: "a\u0085", reason: "control characters"},
		{name: "C1 control CSI", in: "\u009b", reason: "control characters"},
		{name: "right-to-left override", in: "invoice\u202efdp.exe", reason: "bidirectional or other control"},
		{name: "left-to-right isolate", in: "a/\u2066b", reason: "bidirectional or other control"},
		{name: "right-to-left mark", in: "a\u200fb", reason: "bidirectional or other control"},
		{name: "Arabic letter mark", in: "a\u061cb", reason: "bidirectional or other control"},
		{name: "line separator", in: "a\u2028b", reason: "control"},
		{name: "invalid UTF-8", in: "\xff", reason: "valid UTF-8"},
		{name: "truncated UTF-8", in: "caf\xc3", reason: "valid UTF-8"},
		{name: "1025 bytes", in: path1025, reason: "at most 1024 bytes"},
		{name: "256-byte segment", in: "d/" + strings.Repeat("x", 256), reason: "segment longer than 255"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := release.ValidatePath(tc.in)
			if tc.reason == "" {
				checkErr(t, err, "", "")
				return
			}
			checkErr(t, err, "path", tc.reason)
		})
	}
}

// digest returns the base64 of n zero bytes, as a manifest carries it.
func digest(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

func TestChecksumValidate(t *testing.T) {
	tests := []struct {
		name   string
		in     release.Checksum
		field  string // empty: must be accepted
		reason string
	}{
		{name: "crc64nvme 8 bytes", in: release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: digest(8)}},
		{name: "crc32c 4 bytes", in: release.Checksum{Algorithm: release.ChecksumCRC32C, Value: digest(4)}},
		{name: "sha256 32 bytes", in: release.Checksum{Algorithm: release.ChecksumSHA256, Value: digest(32)}},
		{name: "unknown algorithm", in: release.Checksum{Algorithm: "md5", Value: digest(16)}, field: "algorithm", reason: "must be one of"},
		{name: "empty algorithm", in: release.Checksum{Value: digest(4)}, field: "algorithm", reason: "must be one of"},
		{name: "upper-case algorithm", in: release.Checksum{Algorithm: "SHA256", Value: digest(32)}, field: "algorithm", reason: "must be one of"},
		{name: "bad base64", in: release.Checksum{Algorithm: release.ChecksumCRC32C, Value: "!!!!"}, field: "value", reason: "must be base64"},
		{name: "unpadded base64", in: release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: strings.TrimRight(digest(8), "=")}, field: "value", reason: "must be base64"},
		{name: "url base64", in: release.Checksum{Algorithm: release.ChecksumCRC32C, Value: base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff, 0xfe, 0xff})}, field: "value", reason: "must be base64"},
		{name: "empty value", in: release.Checksum{Algorithm: release.ChecksumCRC32C}, field: "value", reason: "must be 4 bytes, got 0"},
		{name: "crc64nvme with 4 bytes", in: release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: digest(4)}, field: "value", reason: "crc64nvme digest must be 8 bytes, got 4"},
		{name: "crc32c with 8 bytes", in: release.Checksum{Algorithm: release.ChecksumCRC32C, Value: digest(8)}, field: "value", reason: "crc32c digest must be 4 bytes, got 8"},
		{name: "sha256 with 31 bytes", in: release.Checksum{Algorithm: release.ChecksumSHA256, Value: digest(31)}, field: "value", reason: "sha256 digest must be 32 bytes, got 31"},
		{name: "sha256 with 33 bytes", in: release.Checksum{Algorithm: release.ChecksumSHA256, Value: digest(33)}, field: "value", reason: "must be 32 bytes, got 33"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.in.Validate(), tc.field, tc.reason)
		})
	}
}

// files builds a manifest of small files at the given paths.
func files(paths ...string) release.Manifest {
	m := release.Manifest{}
	for _, p := range paths {
		m.Files = append(m.Files, release.File{Path: p, Size: 1})
	}
	return m
}

// withFile returns a manifest of one good file and f after it (index 1).
func withFile(f release.File) release.Manifest {
	return release.Manifest{Files: []release.File{{Path: "ok", Size: 1}, f}}
}

func TestManifestValidate(t *testing.T) {
	tests := []struct {
		name   string
		in     release.Manifest
		field  string // empty: must be accepted
		reason string
	}{
		{name: "one file", in: files("a")},
		{name: "empty file", in: release.Manifest{Files: []release.File{{Path: "empty"}}}},
		{name: "siblings", in: files("a/b", "a/c", "a/d/e")},
		{name: "a and a-b", in: files("a", "a-b")},
		{name: "a-b and a/b", in: files("a-b", "a/b")},
		{name: "a-b/c and a/b", in: files("a-b/c", "a/b")},
		{name: "a.b and a/b", in: files("a.b", "a/b")},
		{name: "a/bc and a/b/c", in: files("a/bc", "a/b/c")},
		{name: "ab and a/b", in: files("ab", "a/b")},
		{name: "nil files", in: release.Manifest{}, field: "files", reason: "at least one file"},
		{name: "empty files", in: release.Manifest{Files: []release.File{}}, field: "files", reason: "at least one file"},
		{name: "duplicate", in: files("a", "b", "a"), field: "files[2].path", reason: "duplicate of files[0]"},
		{name: "duplicate nested", in: files("x/y", "z", "q", "x/y"), field: "files[3].path", reason: "duplicate of files[0]"},
		{name: "file then child", in: files("a", "a/b"), field: "files[0].path", reason: "directory of files[1]"},
		{name: "child then file", in: files("a/b", "a"), field: "files[1].path", reason: "directory of files[0]"},
		{name: "deep child then dir", in: files("a/b/c", "a/b"), field: "files[1].path", reason: "directory of files[0]"},
		{name: "dir then deep child", in: files("a/b", "a/b/c"), field: "files[0].path", reason: "directory of files[1]"},
		{name: "grandparent", in: files("x", "a", "a/b/c/d"), field: "files[1].path", reason: "directory of files[2]"},
		{name: "a and a-b and a/b", in: files("a", "a-b", "a/b"), field: "files[0].path", reason: "directory of files[2]"},
		{name: "a-b and a-b/c", in: files("a", "a-b", "a-b/c"), field: "files[1].path", reason: "directory of files[2]"},
		{name: "bad path first error", in: files("ok", "../etc/passwd", "/abs"), field: "files[1].path", reason: `".." segments`},
		{name: "bad path index 2", in: files("a", "b", "c//d"), field: "files[2].path", reason: "empty segments"},
		{name: "negative size", in: withFile(release.File{Path: "f", Size: -1}), field: "files[1].size", reason: "must be between 0 and"},
		{name: "5 TiB file", in: withFile(release.File{Path: "f", Size: release.MaxFileSize})},
		{name: "file over 5 TiB", in: withFile(release.File{Path: "f", Size: release.MaxFileSize + 1}), field: "files[1].size", reason: "5 TiB"},
		{name: "largest int64 size", in: withFile(release.File{Path: "f", Size: math.MaxInt64}), field: "files[1].size", reason: "5 TiB"},
		{name: "etag 256 bytes", in: withFile(release.File{Path: "f", ETag: strings.Repeat("e", 256)})},
		{name: "etag quoted", in: withFile(release.File{Path: "f", ETag: `"9b2cf535f27731c974343645a3985328"`})},
		{name: "etag 257 bytes", in: withFile(release.File{Path: "f", ETag: strings.Repeat("e", 257)}), field: "files[1].etag", reason: "at most 256 bytes"},
		{name: "etag control char", in: withFile(release.File{Path: "f", ETag: "\"abc\x01\""}), field: "files[1].etag", reason: "control characters"},
		{name: "etag newline", in: withFile(release.File{Path: "f", ETag: "abc\n"}), field: "files[1].etag", reason: "control characters"},
		{name: "etag C1 CSI", in: withFile(release.File{Path: "f", ETag: "abc\u009b2J"}), field: "files[1].etag", reason: "control characters"},
		{name: "etag DEL", in: withFile(release.File{Path: "f", ETag: "abc\x7f"}), field: "files[1].etag", reason: "control characters"},
		{
			name:   "checksum unknown algorithm",
			in:     withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: "md5", Value: digest(16)}}),
			field:  "files[1].checksum.algorithm",
			reason: "must be one of",
		},
		{
			name:   "checksum bad base64",
			in:     withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: release.ChecksumSHA256, Value: "not base64!"}}),
			field:  "files[1].checksum.value",
			reason: "must be base64",
		},
		{
			name:   "checksum wrong length",
			in:     withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: release.ChecksumCRC32C, Value: digest(8)}}),
			field:  "files[1].checksum.value",
			reason: "must be 4 bytes, got 8",
		},
		{name: "checksum crc64nvme", in: withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: digest(8)}})},
		{name: "checksum crc32c", in: withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: release.ChecksumCRC32C, Value: digest(4)}})},
		{name: "checksum sha256", in: withFile(release.File{Path: "f", Checksum: &release.Checksum{Algorithm: release.ChecksumSHA256, Value: digest(32)}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, tc.in.Validate(), tc.field, tc.reason)
		})
	}
}

func TestManifestTotalSize(t *testing.T) {
	tests := []struct {
		name string
		in   release.Manifest
		want int64
	}{
		{name: "empty", in: release.Manifest{}, want: 0},
		{name: "one", in: release.Manifest{Files: []release.File{{Path: "a", Size: 7}}}, want: 7},
		{name: "several", in: release.Manifest{Files: []release.File{{Path: "a", Size: 1 << 40}, {Path: "b"}, {Path: "c", Size: 3}}}, want: 1<<40 + 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.TotalSize(); got != tc.want {
				t.Errorf("TotalSize() = %d, want %d", got, tc.want)
			}
		})
	}
}
