package release_test

import (
	"encoding/json"
	"errors"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/hydra-csi/hydra/pkg/release"
)

// The fuzz targets check properties with oracles written independently of
// the code under test. Their f.Add seeds run in every plain `go test`.

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{
		"a", "a/b/c.txt", "dir with spaces/f", "données/été.txt", "a..b", ".hidden",
		"a/.hidden/b", "...", "-rf", `a\b`, "a\u00a0b",
		"", "/abs", "a/../b", "..", "./a", "a/./b", ".", "a//b", "a/", "a\x00b",
		"a\nb", "\x7f", "\u0085", "\xff", "caf\xc3", "../../etc/passwd",
		"d/" + strings.Repeat("x", 255), "d/" + strings.Repeat("x", 256),
		strings.Repeat("abcdefg/", 127) + "abcdefgh", strings.Repeat("abcdefg/", 127) + "abcdefghi",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		err := release.ValidatePath(p)
		if want := pathOracle(p); (err == nil) != want {
			t.Fatalf("ValidatePath(%q) = %v, oracle says valid=%v", p, err, want)
		}
		if err != nil {
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("ValidatePath(%q) = %v, does not wrap ErrInvalid", p, err)
			}
			return
		}
		if path.Clean(p) != p {
			t.Errorf("accepted %q but path.Clean gives %q", p, path.Clean(p))
		}
		if strings.HasPrefix(p, "/") {
			t.Errorf("accepted absolute %q", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." {
				t.Errorf("accepted %q with a .. segment", p)
			}
		}
		if !utf8.ValidString(p) {
			t.Errorf("accepted invalid UTF-8 %q", p)
		}
		if j := filepath.Join("/root", p); !strings.HasPrefix(j, "/root/") {
			t.Errorf("accepted %q but it joins to %q, outside /root/", p, j)
		}
	})
}

// pathOracle restates DESIGN's manifest path rule from its parts: a clean,
// relative, UTF-8 path without control characters, "." or "..", within
// PATH_MAX-style limits (1024 bytes, 255 per segment).
func pathOracle(p string) bool {
	if p == "" || p == "." || len(p) > 1024 || !utf8.ValidString(p) || path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	if strings.IndexFunc(p, unicode.IsControl) >= 0 {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || len(seg) > 255 {
			return false
		}
	}
	return true
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"s3://my-bucket/models/v1/", "s3://my-bucket/models/v1", "s3://bucket", "s3://bucket/",
		"s3://my.bucket-01/a", "s3://b-1/idx/{VERSION}/", "s3://b-1/idx-{VERSION}-x/shards/",
		"s3://bucket/données/été", "file:///data/models/", "file:///data/models", "file:///",
		"file:///data/my%20models/", "file:///data%2Fmodels", "file:///srv/idx/{VERSION}",
		"s3://ab/x/", "s3://MyBucket/x/", "s3://my_bucket/x/", "s3://-bucket/x/",
		"s3://bucket/a/../b/", "s3://bucket/./b/", "s3://bucket/a//b/", "file://host/dir/",
		"file://dir/", "file:///data/../etc/", "file:///data%2F..%2Fetc/", "file:///data%zz/",
		"s3://bucket/{VERSION}/{VERSION}/", "gs://bucket/x/", "bucket/prefix/", "",
		"s3://bucket/a\x00b/", "s3://bucket/a\nb/",
		// Inputs the fuzzer found: a prefix of "/", a '%' that must be
		// escaped again, and a placeholder spelled with escapes.
		"s3://000//", "file:///0%25", "file:///{VERSION}%7BVERSION%7D/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		src, err := release.ParseSource(uri)
		if err != nil {
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("ParseSource(%q) = %v, does not wrap ErrInvalid", uri, err)
			}
			return
		}
		canonical := src.String()
		again, err := release.ParseSource(canonical)
		if err != nil {
			t.Fatalf("ParseSource(%q) = %#v, but its String() %q does not parse: %v", uri, src, canonical, err)
		}
		if again != src {
			t.Fatalf("ParseSource(%q) = %#v, but ParseSource(%q) = %#v", uri, src, canonical, again)
		}
		if again.String() != canonical {
			t.Fatalf("String() not stable: %q then %q", canonical, again.String())
		}
		for _, seg := range strings.Split(src.Prefix, "/") {
			if seg == ".." {
				t.Fatalf("ParseSource(%q) accepted prefix %q with a .. segment", uri, src.Prefix)
			}
		}
		switch src.Scheme {
		case release.SchemeS3:
			// A key prefix is relative: "" (bucket root) or "a/b/".
			if strings.HasPrefix(src.Prefix, "/") || (src.Prefix != "" && !strings.HasSuffix(src.Prefix, "/")) {
				t.Fatalf("ParseSource(%q) gave s3 prefix %q", uri, src.Prefix)
			}
		case release.SchemeFile:
			if !strings.HasPrefix(src.Prefix, "/") || !strings.HasSuffix(src.Prefix, "/") || src.Bucket != "" {
				t.Fatalf("ParseSource(%q) gave file source %#v", uri, src)
			}
		default:
			t.Fatalf("ParseSource(%q) gave scheme %q", uri, src.Scheme)
		}
	})
}

func FuzzManifestJSON(f *testing.F) {
	for _, s := range []string{
		`{"files":[{"path":"a","size":1}]}`,
		`{"files":[{"path":"a/b","size":1},{"path":"a/c","size":2,"etag":"\"e\""}]}`,
		`{"files":[{"path":"a","size":1},{"path":"a-b","size":1},{"path":"a/b","size":1}]}`,
		`{"files":[{"path":"a/b/c"},{"path":"a/b"}]}`,
		`{"files":[{"path":"x"},{"path":"x"}]}`,
		`{"files":[{"path":"données/été.txt","size":3,"checksum":{"algorithm":"crc32c","value":"AAAAAA=="}}]}`,
		`{"files":[{"path":"s","checksum":{"algorithm":"crc64nvme","value":"AAAAAAAAAAA="}}]}`,
		`{"files":[{"path":"../x"}]}`,
		`{"files":[{"path":"a/"},{"path":"a"}]}`,
		`{"files":[]}`,
		`{}`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m release.Manifest
		if json.Unmarshal(data, &m) != nil {
			return
		}
		err := m.Validate()
		if err != nil {
			if !errors.Is(err, release.ErrInvalid) {
				t.Fatalf("Validate() = %v, does not wrap ErrInvalid", err)
			}
			return
		}
		if len(m.Files) == 0 {
			t.Fatalf("accepted a manifest without files")
		}
		for i, a := range m.Files {
			if err := release.ValidatePath(a.Path); err != nil {
				t.Fatalf("accepted files[%d] with bad path: %v", i, err)
			}
			if a.Size < 0 {
				t.Fatalf("accepted files[%d] with size %d", i, a.Size)
			}
			for j, b := range m.Files {
				if i == j {
					continue
				}
				if a.Path == b.Path {
					t.Fatalf("accepted duplicate path %q at files[%d] and files[%d]", a.Path, i, j)
				}
				if strings.HasPrefix(b.Path, a.Path+"/") {
					t.Fatalf("accepted files[%d] %q, a directory of files[%d] %q", i, a.Path, j, b.Path)
				}
			}
		}
	})
}

func FuzzCompareVersions(f *testing.F) {
	seeds := [][3]string{
		{"v9", "v10", "v10a"},
		{"7", "007", "8"},
		{"01", "1.2", "1"},
		{"2024-01-01T00-00-00", "v1", "2023-12-31T23-59-59"},
		{"2024-13-01T00-00-00", "2024-01-01T00-00-00", "0"},
		{"", "a", "a1"},
		{"1.9", "1.10", "1.09"},
		{"release-2", "release-10", "release-02"},
		{"v1.2.3", "v1.10.0", "v1.2.3_rc-1"},
		{"a-1", "a.1", "a_1"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		vs := []string{a, b, c}
		for _, x := range vs {
			if got := release.CompareVersions(x, x); got != 0 {
				t.Fatalf("Compare(%q, %q) = %d, want 0", x, x, got)
			}
			for _, y := range vs {
				xy, yx := release.CompareVersions(x, y), release.CompareVersions(y, x)
				if xy < -1 || xy > 1 {
					t.Fatalf("Compare(%q, %q) = %d, want -1, 0 or 1", x, y, xy)
				}
				if xy != -yx {
					t.Fatalf("antisymmetry: Compare(%q, %q) = %d, Compare(%q, %q) = %d", x, y, xy, y, x, yx)
				}
				// Total order on strings: only equal strings compare equal,
				// or sorting would be unstable across runs.
				if (xy == 0) != (x == y) {
					t.Fatalf("Compare(%q, %q) = %d", x, y, xy)
				}
				for _, z := range vs {
					if xy <= 0 && release.CompareVersions(y, z) <= 0 && release.CompareVersions(x, z) > 0 {
						t.Fatalf("transitivity: %q <= %q <= %q but Compare(%q, %q) > 0", x, y, z, x, z)
					}
				}
			}
		}
	})
}

// channelNameRE is docs/design.md §1's DNS-1123 label grammar, the oracle for
// ValidateChannelName (with len <= 63).
var channelNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

func FuzzValidateChannelName(f *testing.F) {
	for _, s := range []string{
		"a", "0", "search-index", "a--b", strings.Repeat("a", 63), strings.Repeat("a", 64),
		"", "-", "-a", "a-", "A", "a_b", "a.b", "café", "a\n", "a\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := release.ValidateChannelName(name)
		want := len(name) <= 63 && channelNameRE.MatchString(name)
		if (err == nil) != want {
			t.Fatalf("ValidateChannelName(%q) = %v, regexp oracle says valid=%v", name, err, want)
		}
		if err != nil && !errors.Is(err, release.ErrInvalid) {
			t.Fatalf("ValidateChannelName(%q) = %v, does not wrap ErrInvalid", name, err)
		}
	})
}
