package release_test

import (
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want release.Source
		// canonical is what String() must render.
		canonical string
	}{
		{
			name: "s3 with trailing slash", in: "s3://my-bucket/models/v1/",
			want:      release.Source{Scheme: "s3", Bucket: "my-bucket", Prefix: "models/v1/"},
			canonical: "s3://my-bucket/models/v1/",
		},
		{
			name: "s3 without trailing slash", in: "s3://my-bucket/models/v1",
			want:      release.Source{Scheme: "s3", Bucket: "my-bucket", Prefix: "models/v1/"},
			canonical: "s3://my-bucket/models/v1/",
		},
		{
			name: "s3 bucket root", in: "s3://bucket",
			want:      release.Source{Scheme: "s3", Bucket: "bucket"},
			canonical: "s3://bucket/",
		},
		{
			name: "s3 bucket root with slash", in: "s3://bucket/",
			want:      release.Source{Scheme: "s3", Bucket: "bucket"},
			canonical: "s3://bucket/",
		},
		{
			name: "s3 bucket with dots and digits", in: "s3://my.bucket-01/a",
			want:      release.Source{Scheme: "s3", Bucket: "my.bucket-01", Prefix: "a/"},
			canonical: "s3://my.bucket-01/a/",
		},
		{
			name: "s3 bucket of 3 chars", in: "s3://abc/x/",
			want:      release.Source{Scheme: "s3", Bucket: "abc", Prefix: "x/"},
			canonical: "s3://abc/x/",
		},
		{
			name: "s3 bucket of 63 chars", in: "s3://" + strings.Repeat("b", 63) + "/x/",
			want:      release.Source{Scheme: "s3", Bucket: strings.Repeat("b", 63), Prefix: "x/"},
			canonical: "s3://" + strings.Repeat("b", 63) + "/x/",
		},
		{
			name: "s3 placeholder", in: "s3://b-1/idx/{VERSION}/",
			want:      release.Source{Scheme: "s3", Bucket: "b-1", Prefix: "idx/{VERSION}/"},
			canonical: "s3://b-1/idx/{VERSION}/",
		},
		{
			name: "s3 unicode prefix", in: "s3://bucket/données/été",
			want:      release.Source{Scheme: "s3", Bucket: "bucket", Prefix: "données/été/"},
			canonical: "s3://bucket/données/été/",
		},
		{
			name: "file dir", in: "file:///data/models/",
			want:      release.Source{Scheme: "file", Prefix: "/data/models/"},
			canonical: "file:///data/models/",
		},
		{
			name: "file dir without slash", in: "file:///data/models",
			want:      release.Source{Scheme: "file", Prefix: "/data/models/"},
			canonical: "file:///data/models/",
		},
		{
			name: "file root", in: "file:///",
			want:      release.Source{Scheme: "file", Prefix: "/"},
			canonical: "file:///",
		},
		{
			name: "file percent-escaped space", in: "file:///data/my%20models/",
			want:      release.Source{Scheme: "file", Prefix: "/data/my models/"},
			canonical: "file:///data/my models/",
		},
		{
			name: "file percent-escaped slash", in: "file:///data%2Fmodels",
			want:      release.Source{Scheme: "file", Prefix: "/data/models/"},
			canonical: "file:///data/models/",
		},
		{
			name: "file placeholder", in: "file:///srv/idx/{VERSION}",
			want:      release.Source{Scheme: "file", Prefix: "/srv/idx/{VERSION}/"},
			canonical: "file:///srv/idx/{VERSION}/",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := release.ParseSource(tc.in)
			if err != nil {
				t.Fatalf("ParseSource(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseSource(%q) = %#v, want %#v", tc.in, got, tc.want)
			}
			if s := got.String(); s != tc.canonical {
				t.Errorf("String() = %q, want %q", s, tc.canonical)
			}
			again, err := release.ParseSource(got.String())
			if err != nil {
				t.Fatalf("ParseSource(String()) of %q: %v", got.String(), err)
			}
			if again != got {
				t.Errorf("round trip: ParseSource(%q) = %#v, want %#v", got.String(), again, got)
			}
		})
	}
}

func TestParseSourceRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string
	}{
		{name: "bucket too short", in: "s3://ab/x/", reason: "3 to 63 characters"},
		{name: "bucket too long", in: "s3://" + strings.Repeat("b", 64) + "/x/", reason: "3 to 63 characters"},
		{name: "empty bucket", in: "s3:///x/", reason: "3 to 63 characters"},
		{name: "bare scheme", in: "s3://", reason: "3 to 63 characters"},
		{name: "bucket upper case", in: "s3://MyBucket/x/", reason: "lower-case"},
		{name: "bucket underscore", in: "s3://my_bucket/x/", reason: "lower-case"},
		{name: "bucket with port", in: "s3://bucket:9000/x/", reason: "lower-case"},
		{name: "bucket leading dash", in: "s3://-bucket/x/", reason: "start and end"},
		{name: "bucket trailing dot", in: "s3://bucket./x/", reason: "start and end"},
		{name: "s3 traversal", in: "s3://bucket/a/../b/", reason: `".." segments`},
		{name: "s3 leading traversal", in: "s3://bucket/../b/", reason: `".." segments`},
		{name: "s3 trailing traversal", in: "s3://bucket/a/..", reason: `".." segments`},
		{name: "s3 dot segment", in: "s3://bucket/./b/", reason: `"." segments`},
		{name: "s3 empty segment", in: "s3://bucket/a//b/", reason: "empty segments"},
		{name: "s3 double trailing slash", in: "s3://bucket/a//", reason: "empty segments"},
		{name: "s3 absolute-looking key", in: "s3://bucket//a/", reason: "must be relative"},
		{name: "s3 control char in prefix", in: "s3://bucket/a\x01b/", reason: "control characters"},
		{name: "s3 invalid UTF-8", in: "s3://bucket/\xff/", reason: "valid UTF-8"},
		{name: "file with host", in: "file://host/dir/", reason: "file:///ABSOLUTE/DIR/"},
		{name: "file localhost", in: "file://localhost/dir/", reason: "file:///ABSOLUTE/DIR/"},
		{name: "file relative", in: "file://dir/", reason: "file:///ABSOLUTE/DIR/"},
		{name: "file dot relative", in: "file://./dir/", reason: "file:///ABSOLUTE/DIR/"},
		{name: "file empty", in: "file://", reason: "file:///ABSOLUTE/DIR/"},
		{name: "file traversal", in: "file:///data/../etc/", reason: `".." segments`},
		{name: "file escaped traversal", in: "file:///data%2F..%2Fetc/", reason: `".." segments`},
		{name: "file escaped NUL", in: "file:///data%00x/", reason: "control characters"},
		{name: "file bad escape", in: "file:///data%zz/", reason: "bad escape"},
		{name: "file truncated escape", in: "file:///data%2", reason: "bad escape"},
		{name: "two placeholders", in: "s3://bucket/{VERSION}/{VERSION}/", reason: "at most once"},
		{name: "two placeholders in file", in: "file:///{VERSION}-{VERSION}/", reason: "at most once"},
		{name: "unknown scheme", in: "gs://bucket/x/", reason: "scheme must be s3 or file"},
		{name: "http", in: "https://bucket.s3.amazonaws.com/x/", reason: "scheme must be s3 or file"},
		{name: "upper-case scheme", in: "S3://bucket/x/", reason: "scheme must be s3 or file"},
		{name: "no scheme", in: "bucket/prefix/", reason: "must be s3://BUCKET/PREFIX/"},
		{name: "absolute path without scheme", in: "/data/models/", reason: "must be s3://BUCKET/PREFIX/"},
		{name: "scheme without slashes", in: "s3:bucket/x", reason: "must be s3://BUCKET/PREFIX/"},
		{name: "empty", in: "", reason: "must be s3://BUCKET/PREFIX/"},
		{name: "NUL", in: "s3://bucket/a\x00b/", reason: "control characters"},
		{name: "newline", in: "s3://bucket/a\nb/", reason: "control characters"},
		{name: "carriage return", in: "file:///a\r/", reason: "control characters"},
		{name: "tab", in: "s3://bucket/a\tb/", reason: "control characters"},
		{name: "escape", in: "s3://bucket/a\x1b[2J/", reason: "control characters"},
		{name: "right-to-left override", in: "file:///data/\u202egpj/", reason: "control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := release.ParseSource(tc.in)
			checkErr(t, err, "source", tc.reason)
			if got != (release.Source{}) {
				t.Errorf("ParseSource(%q) returned %#v with its error, want the zero Source", tc.in, got)
			}
		})
	}
}

func TestSplitAtPlaceholder(t *testing.T) {
	tests := []struct {
		name               string
		in                 string
		dir, before, after string
		ok                 bool
	}{
		{name: "own segment", in: "s3://b-1/idx/{VERSION}/", dir: "idx/", ok: true},
		{name: "inside a segment", in: "s3://b-1/idx-{VERSION}-x/shards/", before: "idx-", after: "-x", ok: true},
		{name: "first segment", in: "s3://b-1/{VERSION}/", ok: true},
		{name: "deep, no trailing slash", in: "s3://b-1/a/b/v{VERSION}", dir: "a/b/", before: "v", ok: true},
		{name: "file", in: "file:///srv/idx/v-{VERSION}.d/data/", dir: "/srv/idx/", before: "v-", after: ".d", ok: true},
		{name: "no placeholder", in: "s3://b-1/idx/v1/"},
		{name: "bucket root", in: "s3://b-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := release.ParseSource(tc.in)
			if err != nil {
				t.Fatalf("ParseSource(%q): %v", tc.in, err)
			}
			if got := src.HasPlaceholder(); got != tc.ok {
				t.Errorf("HasPlaceholder() = %v, want %v", got, tc.ok)
			}
			dir, before, after, ok := src.SplitAtPlaceholder()
			if dir != tc.dir || before != tc.before || after != tc.after || ok != tc.ok {
				t.Errorf("SplitAtPlaceholder() = (%q, %q, %q, %v), want (%q, %q, %q, %v)",
					dir, before, after, ok, tc.dir, tc.before, tc.after, tc.ok)
			}
			// The parts put back together around a version name the same
			// directory as WithVersion does.
			if ok {
				const v = "2024-01-01T00-00-00"
				resolved := src.WithVersion(v).Prefix
				if !strings.HasPrefix(resolved, dir+before+v+after) {
					t.Errorf("WithVersion prefix %q does not start with %q", resolved, dir+before+v+after)
				}
			}
		})
	}
}

func TestWithVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		version string
		want    string
	}{
		{name: "s3 segment", in: "s3://bucket/idx/{VERSION}/", version: "2024-01-01T00-00-00", want: "s3://bucket/idx/2024-01-01T00-00-00/"},
		{name: "s3 inside segment", in: "s3://bucket/idx-{VERSION}-x/shards/", version: "v2", want: "s3://bucket/idx-v2-x/shards/"},
		{name: "file", in: "file:///srv/{VERSION}", version: "v1.2.3", want: "file:///srv/v1.2.3/"},
		{name: "no placeholder", in: "s3://bucket/fixed/", version: "v2", want: "s3://bucket/fixed/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := release.ParseSource(tc.in)
			if err != nil {
				t.Fatalf("ParseSource(%q): %v", tc.in, err)
			}
			before := src
			got := src.WithVersion(tc.version)
			if got.String() != tc.want {
				t.Errorf("WithVersion(%q) = %q, want %q", tc.version, got, tc.want)
			}
			if got.HasPlaceholder() {
				t.Errorf("WithVersion result %q still has the placeholder", got)
			}
			if src != before {
				t.Errorf("WithVersion modified its receiver: %#v, was %#v", src, before)
			}
			if again, err := release.ParseSource(got.String()); err != nil || again != got {
				t.Errorf("ParseSource(%q) = %#v, %v; want %#v", got, again, err, got)
			}
		})
	}
}
