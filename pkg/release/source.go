package release

import (
	"errors"
	"net/url"
	"path"
	"strings"
)

// Source URI schemes.
const (
	SchemeS3   = "s3"
	SchemeFile = "file"
)

// VersionPlaceholder in a dataset URI stands for the release's version.
const VersionPlaceholder = "{VERSION}"

// Source is a parsed dataset location: s3://bucket/prefix/ or file:///dir/.
// Prefix always ends in '/' unless it is empty (the bucket root), so that
// "models/v1/" never matches "models/v10/...".
type Source struct {
	Scheme string
	// Bucket is the S3 bucket; empty for file://.
	Bucket string
	// Prefix is the key prefix in the bucket, or the absolute directory
	// for file:// (starting with '/').
	Prefix string
}

// String renders the canonical URI. A '%' in a file path is escaped, since
// ParseSource decodes escapes there; every other character stands as is.
func (s Source) String() string {
	if s.Scheme == SchemeFile {
		return "file://" + strings.ReplaceAll(s.Prefix, "%", "%25")
	}
	return "s3://" + s.Bucket + "/" + s.Prefix
}

// HasPlaceholder reports whether the URI still holds {VERSION}.
func (s Source) HasPlaceholder() bool { return strings.Contains(s.Prefix, VersionPlaceholder) }

// WithVersion returns the source with {VERSION} replaced by version.
func (s Source) WithVersion(version string) Source {
	s.Prefix = strings.ReplaceAll(s.Prefix, VersionPlaceholder, version)
	return s
}

// SplitAtPlaceholder splits the prefix around the path segment that holds
// {VERSION}: dir is everything before that segment (ending in '/' or empty),
// and before/after are the segment's text around the placeholder. Listing
// dir with delimiter '/' yields the candidate versions.
func (s Source) SplitAtPlaceholder() (dir, before, after string, ok bool) {
	i := strings.Index(s.Prefix, VersionPlaceholder)
	if i < 0 {
		return "", "", "", false
	}
	start := strings.LastIndex(s.Prefix[:i], "/") + 1
	rest := s.Prefix[i+len(VersionPlaceholder):]
	end := strings.Index(rest, "/")
	if end < 0 {
		end = len(rest)
	}
	return s.Prefix[:start], s.Prefix[start:i], rest[:end], true
}

// ParseSource parses and validates a dataset URI. A {VERSION} placeholder
// may appear once, inside the path.
func ParseSource(uri string) (Source, error) {
	const field = "source"
	if strings.IndexFunc(uri, IsControl) >= 0 {
		return Source{}, invalid(field, uri, "must not contain control characters")
	}
	if n := strings.Count(uri, VersionPlaceholder); n > 1 {
		return Source{}, invalid(field, uri, "may contain %s at most once", VersionPlaceholder)
	}
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return Source{}, invalid(field, uri, "must be s3://BUCKET/PREFIX/ or file:///DIR/")
	}
	switch scheme {
	case SchemeS3:
		return parseS3(uri, rest)
	case SchemeFile:
		return parseFile(uri, rest)
	}
	return Source{}, invalid(field, uri, "scheme must be s3 or file")
}

func parseS3(uri, rest string) (Source, error) {
	bucket, prefix, _ := strings.Cut(rest, "/")
	if err := validateBucket(bucket); err != nil {
		return Source{}, invalid("source", uri, "%v", err)
	}
	if err := validatePrefix(prefix); err != nil {
		return Source{}, invalid("source", uri, "%v", err)
	}
	return Source{Scheme: SchemeS3, Bucket: bucket, Prefix: withSlash(prefix)}, nil
}

func parseFile(uri, rest string) (Source, error) {
	// file:///dir/ has an empty host; file://host/dir is not a local path.
	if !strings.HasPrefix(rest, "/") {
		return Source{}, invalid("source", uri, "file URIs must be file:///ABSOLUTE/DIR/")
	}
	dir, err := url.PathUnescape(rest)
	if err != nil {
		return Source{}, invalid("source", uri, "bad escape: %v", err)
	}
	// Count the placeholder again once escapes are decoded.
	if strings.Count(dir, VersionPlaceholder) > 1 {
		return Source{}, invalid("source", uri, "may contain %s at most once", VersionPlaceholder)
	}
	if dir != "/" {
		if err := validatePrefix(strings.TrimPrefix(dir, "/")); err != nil {
			return Source{}, invalid("source", uri, "%v", err)
		}
	}
	return Source{Scheme: SchemeFile, Prefix: withSlash(path.Clean(dir))}, nil
}

// validatePrefix accepts an empty prefix or a relative, clean key path (a
// trailing '/' allowed); "." and ".." segments are refused so that a prefix
// means the same thing in S3 and on a filesystem.
func validatePrefix(prefix string) error {
	if strings.HasPrefix(prefix, "/") {
		return &FieldError{Field: "prefix", Reason: "must be relative (no '/' after the bucket)"}
	}
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return nil
	}
	if err := ValidatePath(p); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &FieldError{Field: "prefix", Reason: fe.Reason}
		}
		return err
	}
	return nil
}

func withSlash(p string) string {
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// validateBucket applies S3's bucket naming rules: 3–63 characters of
// lower-case letters, digits, '.' and '-', starting and ending with a
// letter or digit.
func validateBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return &FieldError{Field: "bucket", Value: b, Reason: "must be 3 to 63 characters"}
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !isLowerAlnum(c) && c != '.' && c != '-' {
			return &FieldError{Field: "bucket", Value: b, Reason: "must consist of lower-case letters, digits, '.' and '-'"}
		}
	}
	if !isLowerAlnum(b[0]) || !isLowerAlnum(b[len(b)-1]) {
		return &FieldError{Field: "bucket", Value: b, Reason: "must start and end with a letter or digit"}
	}
	return nil
}
