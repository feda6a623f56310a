package release

import (
	"encoding/base64"
	"fmt"
	"math"
	"path"
	"strings"
	"unicode/utf8"
)

// Checksum algorithms a manifest may carry. The names match S3's
// x-amz-checksum-* headers in lower case.
const (
	ChecksumCRC64NVME = "crc64nvme"
	ChecksumCRC32C    = "crc32c"
	ChecksumSHA256    = "sha256"
)

// checksumSizes is the digest length in bytes of each algorithm.
var checksumSizes = map[string]int{
	ChecksumCRC64NVME: 8,
	ChecksumCRC32C:    4,
	ChecksumSHA256:    32,
}

const (
	// MaxPathLength bounds a manifest path; Linux's PATH_MAX is 4096 and the
	// path is joined below the store root on a node.
	MaxPathLength = 1024
	// maxSegmentLength is NAME_MAX on the filesystems the cache runs on.
	maxSegmentLength = 255
	// maxETagLength bounds an ETag (S3's are 34–70 bytes quoted).
	maxETagLength = 256
	// MaxFileSize bounds one file: 5 TiB, the largest object S3 stores.
	MaxFileSize = 5 << 40
	// MaxReleaseSize bounds the bytes of a release, all datasets together:
	// 1 EiB, far beyond any disk yet far from overflowing an int64.
	MaxReleaseSize = 1 << 60
)

// Checksum is a file's full-object checksum as S3 stores it: the algorithm
// name and the base64 of the big-endian digest.
type Checksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// Validate checks that the algorithm is known and the value decodes to a
// digest of the algorithm's length.
func (c Checksum) Validate() error {
	size, ok := checksumSizes[c.Algorithm]
	if !ok {
		return invalid("algorithm", c.Algorithm, "must be one of crc64nvme, crc32c, sha256")
	}
	raw, err := base64.StdEncoding.DecodeString(c.Value)
	if err != nil {
		return invalid("value", c.Value, "must be base64: %v", err)
	}
	if len(raw) != size {
		return invalid("value", c.Value, "%s digest must be %d bytes, got %d", c.Algorithm, size, len(raw))
	}
	return nil
}

// File is one entry of a manifest: where it lives below the dataset's
// source prefix and what its bytes must be.
type File struct {
	// Path is relative to the dataset root, '/'-separated and clean.
	Path string `json:"path"`
	// Size in bytes; every download is checked against it.
	Size int64 `json:"size"`
	// ETag of the object at publish time; downloads send it as If-Match so
	// an object overwritten after publish is refused instead of served.
	ETag string `json:"etag,omitempty"`
	// Checksum of the whole object, when the source stores one.
	Checksum *Checksum `json:"checksum,omitempty"`
}

// Manifest is the exact list of files of a dataset at publish time.
type Manifest struct {
	Files []File `json:"files"`
}

// TotalSize is the sum of the file sizes. It saturates at math.MaxInt64
// rather than wrapping negative, so a manifest that was never validated
// cannot pass for a small one in a space check.
func (m Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n = AddSizes(n, f.Size)
	}
	return n
}

// AddSizes adds two sizes, saturating at math.MaxInt64; a negative size
// counts as zero.
func AddSizes(a, b int64) int64 {
	a, b = max(a, 0), max(b, 0)
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// ValidatePath checks one manifest path: relative, clean, no "." or ".."
// segment, no empty segment, valid UTF-8 without NUL, control or
// bidirectional characters (IsControl), and within the length limits. Such a path can be joined below any
// directory without escaping it.
func ValidatePath(p string) error {
	const field = "path"
	switch {
	case p == "":
		return invalid(field, p, "must not be empty")
	case len(p) > MaxPathLength:
		return invalid(field, p, "must be at most %d bytes", MaxPathLength)
	case !utf8.ValidString(p):
		return invalid(field, p, "must be valid UTF-8")
	case strings.HasPrefix(p, "/"):
		return invalid(field, p, "must be relative")
	}
	// Bidirectional controls count too: a U+202E in a path makes the name
	// a listing shows differ from the file's real name.
	if strings.IndexFunc(p, IsControl) >= 0 {
		return invalid(field, p, "must not contain NUL, bidirectional or other control characters")
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return invalid(field, p, "must not contain empty segments")
		case seg == "." || seg == "..":
			return invalid(field, p, "must not contain %q segments", seg)
		case len(seg) > maxSegmentLength:
			return invalid(field, p, "segment longer than %d bytes", maxSegmentLength)
		}
	}
	if path.Clean(p) != p {
		// Unreachable with the checks above; kept as the rule's definition.
		return invalid(field, p, "must be clean")
	}
	return nil
}

// Validate checks every file and the tree they form: no duplicate paths and
// no file that is also a directory of another file.
func (m Manifest) Validate() error {
	if len(m.Files) == 0 {
		return invalid("files", "", "must list at least one file")
	}
	files := make(map[string]int, len(m.Files))
	for i, f := range m.Files {
		field := fmt.Sprintf("files[%d]", i)
		if err := f.validate(); err != nil {
			return prefixed(field, err)
		}
		if j, dup := files[f.Path]; dup {
			return invalid(field+".path", f.Path, "duplicate of files[%d]", j)
		}
		files[f.Path] = i
	}
	// A path "a/b" needs a directory "a"; if "a" is also a file the tree
	// cannot exist on disk. Walk each file's parents and look them up.
	for i, f := range m.Files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if j, clash := files[dir]; clash {
				return invalid(fmt.Sprintf("files[%d].path", j), dir,
					"is a file but also a directory of files[%d] %q", i, f.Path)
			}
		}
	}
	return nil
}

func (f File) validate() error {
	if err := ValidatePath(f.Path); err != nil {
		return err
	}
	if f.Size < 0 || f.Size > MaxFileSize {
		return invalid("size", fmt.Sprint(f.Size), "must be between 0 and %d (5 TiB)", int64(MaxFileSize))
	}
	if len(f.ETag) > maxETagLength {
		return invalid("etag", f.ETag, "must be at most %d bytes", maxETagLength)
	}
	if strings.IndexFunc(f.ETag, IsControl) >= 0 {
		return invalid("etag", f.ETag, "must not contain control characters")
	}
	if f.Checksum != nil {
		if err := f.Checksum.Validate(); err != nil {
			return prefixed("checksum", err)
		}
	}
	return nil
}
