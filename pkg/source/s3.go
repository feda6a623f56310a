package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/hydra-csi/hydra/pkg/release"
)

const (
	// defaultRegion signs requests when nothing configures one. MinIO and
	// most S3-compatible stores ignore it; AWS answers a bucket in another
	// region with a PermanentRedirect error that says so.
	defaultRegion = "us-east-1"
	// defaultS3Concurrency bounds parallel HeadObject calls: enough to hide
	// round trips, few enough not to trip S3's per-prefix request rates.
	defaultS3Concurrency = 16
	// probePageSize is the page size when only the first file under a
	// prefix matters (see hasObjects).
	probePageSize = 32
)

// S3 is the backend for s3:// sources, on AWS or any S3-compatible store.
// It implements Lister; one client serves every call and goroutine.
type S3 struct {
	client      *s3.Client
	concurrency int
}

// NewS3 builds an S3 backend from the standard AWS environment and config
// files (credentials chain, AWS_REGION, AWS_ENDPOINT_URL_S3, profiles),
// overridden by opts.
func NewS3(ctx context.Context, opts Options) (*S3, error) {
	client, err := newS3Client(ctx, opts.Endpoint, opts.Region, nil)
	if err != nil {
		return nil, err
	}
	n := opts.Concurrency
	if n <= 0 {
		n = defaultS3Concurrency
	}
	return &S3{client: client, concurrency: n}, nil
}

// newS3Client builds a client the way every backend of this package does:
// the standard AWS environment and config files, overridden by endpoint and
// region, path-style for custom endpoints, signed with creds (nil: the
// chain of the environment). tune runs last, for settings of
// one use only (the ranged reader's transport and retries).
func newS3Client(ctx context.Context, endpoint, region string, creds *Credentials, tune ...func(*s3.Options)) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("source: load AWS configuration: %w", err)
	}
	if creds != nil {
		// A volume's own keys replace the whole chain: never a fallback to
		// the node's credentials, whose reach may be wider.
		cfg.Credentials = aws.NewCredentialsCache(creds.provider())
	}
	if region != "" {
		cfg.Region = region
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	endpointFn := func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		// By now BaseEndpoint holds any custom endpoint, from opts or from
		// the environment and config files. Such stores (MinIO, Ceph, ...)
		// rarely have wildcard DNS for virtual-hosted buckets.
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	}
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){endpointFn}, tune...)...), nil
}

// List implements Lister: one ListObjectsV2 walk over the prefix, then a
// HeadObject per object that may carry a checksum, since listings name the
// algorithm at best, never the value.
func (s *S3) List(ctx context.Context, src release.Source) (release.Manifest, error) {
	if err := s.check(src); err != nil {
		return release.Manifest{}, err
	}
	files, reports, err := s.listFiles(ctx, src)
	if err != nil {
		return release.Manifest{}, err
	}
	if len(files) == 0 {
		return release.Manifest{}, fmt.Errorf("source: %s: no objects under prefix: %w", src, ErrEmpty)
	}
	heads := toHead(reports)
	err = forEach(ctx, len(heads), s.concurrency, func(ctx context.Context, i int) error {
		return s.fillChecksum(ctx, src, &files[heads[i]])
	})
	if err != nil {
		return release.Manifest{}, err
	}
	return manifestOf(src, files)
}

// checksumReport is what a listing says about an object's checksum.
type checksumReport int

const (
	reportNone     checksumReport = iota // no ChecksumAlgorithm in the listing
	reportUsable                         // a full-object algorithm we record
	reportUnusable                       // composite, or only algorithms we do not record
)

// listFiles pages through the prefix and returns the files with what the
// listing said about each one's checksum.
func (s *S3) listFiles(ctx context.Context, src release.Source) ([]release.File, []checksumReport, error) {
	var (
		files   []release.File
		reports []checksumReport
	)
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(src.Bucket),
		Prefix: aws.String(src.Prefix),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, nil, s3Error(src, "list objects", err)
		}
		for _, obj := range page.Contents {
			f, ok, err := fileOf(src, obj)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				files = append(files, f)
				reports = append(reports, reportOf(obj))
			}
		}
	}
	return files, reports, nil
}

// fileOf maps one listed object to a manifest entry; ok is false for
// "directory markers" (zero-byte keys ending in '/', as consoles create).
func fileOf(src release.Source, obj types.Object) (release.File, bool, error) {
	key := aws.ToString(obj.Key)
	size := aws.ToInt64(obj.Size)
	if isMarker(key, size) {
		return release.File{}, false, nil
	}
	rel := strings.TrimPrefix(key, src.Prefix)
	if err := release.ValidatePath(rel); err != nil {
		return release.File{}, false, fmt.Errorf("source: %s: object key %q cannot be a file path: %w", src, key, err)
	}
	// The ETag stays as S3 sends it, quotes included: it goes back verbatim
	// in If-Match, where the quotes are part of the syntax.
	return release.File{Path: rel, Size: size, ETag: aws.ToString(obj.ETag)}, true, nil
}

func isMarker(key string, size int64) bool { return size == 0 && strings.HasSuffix(key, "/") }

// reportOf reads the listing's checksum fields. Composite (multipart,
// per-part) checksums count as unusable; see usableChecksum for why.
func reportOf(obj types.Object) checksumReport {
	if len(obj.ChecksumAlgorithm) == 0 {
		return reportNone
	}
	if obj.ChecksumType == types.ChecksumTypeComposite {
		return reportUnusable
	}
	for _, a := range obj.ChecksumAlgorithm {
		switch a {
		case types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc32c:
			return reportUsable
		}
	}
	return reportUnusable
}

// toHead returns the indexes of the objects worth a HeadObject. AWS names
// each object's checksum algorithm in listings, so only those announcing a
// usable one are asked. Some stores (MinIO) never do; when no object of the
// listing reports anything, silence says nothing, and every object is asked.
func toHead(reports []checksumReport) []int {
	anyReported := slices.ContainsFunc(reports, func(r checksumReport) bool { return r != reportNone })
	var heads []int
	for i, r := range reports {
		if r == reportUsable || !anyReported {
			heads = append(heads, i)
		}
	}
	return heads
}

// fillChecksum fetches f's checksum value with HeadObject. The HEAD must see
// the object the listing saw: a different ETag or size means it was
// overwritten meanwhile, and its checksum would not match the manifest.
func (s *S3) fillChecksum(ctx context.Context, src release.Source, f *release.File) error {
	key := src.Prefix + f.Path
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(src.Bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		return s3Error(src, fmt.Sprintf("head object %q", key), err)
	}
	if etag, size := aws.ToString(out.ETag), aws.ToInt64(out.ContentLength); etag != f.ETag || size != f.Size {
		return fmt.Errorf("source: %s: object %q changed while listing (ETag %s, %d bytes → ETag %s, %d bytes); publish again once uploads are done",
			src, key, f.ETag, f.Size, etag, size)
	}
	sum, err := usableChecksum(out)
	if err != nil {
		return fmt.Errorf("source: %s: object %q: %w", src, key, err)
	}
	f.Checksum = sum
	return nil
}

// usableChecksum picks the checksum to record, preferring crc64nvme (what
// S3 now computes by default; strong against corruption and cheap to
// verify), then sha256, then crc32c. It returns nil when none is usable.
//
// Multipart uploads may carry COMPOSITE checksums: a checksum of the parts'
// checksums, spelled "VALUE-N" with N the part count. Verifying one needs the
// original part boundaries, which a node downloading with its own ranges does
// not have, so such values are left out rather than recorded as if they
// covered the whole object.
func usableChecksum(out *s3.HeadObjectOutput) (*release.Checksum, error) {
	if out.ChecksumType == types.ChecksumTypeComposite {
		return nil, nil
	}
	candidates := []release.Checksum{
		{Algorithm: release.ChecksumCRC64NVME, Value: aws.ToString(out.ChecksumCRC64NVME)},
		{Algorithm: release.ChecksumSHA256, Value: aws.ToString(out.ChecksumSHA256)},
		{Algorithm: release.ChecksumCRC32C, Value: aws.ToString(out.ChecksumCRC32C)},
	}
	for _, c := range candidates {
		// '-' is not in the base64 alphabet, so it only appears in the
		// "-N" suffix of a composite value.
		if c.Value == "" || strings.Contains(c.Value, "-") {
			continue
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("store returned a malformed %s checksum: %w", c.Algorithm, err)
		}
		return &c, nil
	}
	return nil, nil
}

// Versions implements Lister: the versions are the sub-"directories" of the
// placeholder's directory whose names fit around the placeholder, kept when
// the location they resolve to holds at least one object.
func (s *S3) Versions(ctx context.Context, src release.Source) ([]string, error) {
	dir, before, after, ok := src.SplitAtPlaceholder()
	if src.Scheme != release.SchemeS3 || !ok {
		return nil, fmt.Errorf("source: %s: want an s3:// URI with a %s placeholder", src, release.VersionPlaceholder)
	}
	candidates, err := s.subdirs(ctx, src, dir+before)
	if err != nil {
		return nil, err
	}
	var versions []string
	for _, sub := range candidates {
		if v, ok := versionIn(strings.TrimPrefix(sub, dir), before, after); ok {
			versions = append(versions, v)
		}
	}
	return s.nonEmpty(ctx, src, versions)
}

// subdirs returns the common prefixes one level below prefix, without their
// trailing '/'.
func (s *S3) subdirs(ctx context.Context, src release.Source, prefix string) ([]string, error) {
	var subs []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:    aws.String(src.Bucket),
		Prefix:    aws.String(prefix),
		Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s3Error(src, "list versions", err)
		}
		for _, cp := range page.CommonPrefixes {
			subs = append(subs, strings.TrimSuffix(aws.ToString(cp.Prefix), "/"))
		}
	}
	return subs, nil
}

// nonEmpty keeps the versions whose resolved prefix holds a file, sorted
// oldest first. A common prefix alone is not enough: it may hold only a
// console-made folder marker, or lack the path after the placeholder
// (s3://b/idx/{VERSION}/shards/ with no shards/ yet), and `--version auto`
// must not pick a version that List would then refuse.
func (s *S3) nonEmpty(ctx context.Context, src release.Source, versions []string) ([]string, error) {
	keep := make([]bool, len(versions))
	err := forEach(ctx, len(versions), s.concurrency, func(ctx context.Context, i int) error {
		var err error
		keep[i], err = s.hasObjects(ctx, src.WithVersion(versions[i]))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for i, v := range versions {
		if keep[i] {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, release.CompareVersions)
	return out, nil
}

// hasObjects reports whether src holds at least one object other than a
// folder marker. It pages in small steps since the first object usually
// answers the question.
func (s *S3) hasObjects(ctx context.Context, src release.Source) (bool, error) {
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket:  aws.String(src.Bucket),
		Prefix:  aws.String(src.Prefix),
		MaxKeys: aws.Int32(probePageSize),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return false, s3Error(src, "list objects", err)
		}
		for _, obj := range page.Contents {
			if !isMarker(aws.ToString(obj.Key), aws.ToInt64(obj.Size)) {
				return true, nil
			}
		}
	}
	return false, nil
}

func (s *S3) check(src release.Source) error {
	if src.Scheme != release.SchemeS3 {
		return fmt.Errorf("source: %s: not an s3:// URI", src)
	}
	return unresolved(src)
}

// readableError shows a user what the store said without the SDK's
// request IDs and operation stack, and keeps the SDK error for errors.As.
type readableError struct {
	msg string
	err error
}

func (e *readableError) Error() string { return e.msg }
func (e *readableError) Unwrap() error { return e.err }

// s3Error wraps an SDK error as "source: URI: WHAT: Code: message". HEAD
// responses have no body, so their errors carry only a code (NotFound).
func s3Error(src release.Source, what string, err error) error {
	detail := err.Error()
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		detail = apiErr.ErrorCode()
		if m := apiErr.ErrorMessage(); m != "" {
			detail += ": " + m
		}
	}
	return &readableError{msg: fmt.Sprintf("source: %s: %s: %s", src, what, detail), err: err}
}
