package source_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// crc64NVMETable is CRC-64/NVME, the algorithm S3 calls CRC64NVME: the
// reflected form of polynomial 0xAD93D23594C93659, with hash/crc64's
// init and final XOR of all ones. hash/crc64 predefines only ISO and ECMA.
var crc64NVMETable = crc64.MakeTable(0x9A6C9329AC4BC9B5)

func TestCRC64NVMECheckValue(t *testing.T) {
	// The catalogue check value of CRC-64/NVME for "123456789".
	if got := crc64.Checksum([]byte("123456789"), crc64NVMETable); got != 0xAE8B14860A799888 {
		t.Fatalf("crc64nvme(123456789) = %#x, want 0xae8b14860a799888", got)
	}
}

// Expected checksum values as S3 spells them: base64 of the big-endian digest.
func crc64nvmeOf(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, crc64.Checksum(b, crc64NVMETable)))
}

func crc32cOf(b []byte) string {
	sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, sum))
}

func sha256Of(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// md5ETag is the ETag S3 and MinIO give a single-part, unencrypted upload.
func md5ETag(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// useMinIO points the standard AWS environment at m, as the CLI will see
// it, shielded from the developer's own AWS configuration, and returns an
// S3 backend built from that environment.
func useMinIO(t *testing.T, m *testenv.MinIO) *source.S3 {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_PROFILE", "")
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	s, err := source.NewS3(t.Context(), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func s3URI(t *testing.T, uri string) release.Source {
	t.Helper()
	src, err := release.ParseSource(uri)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// body returns n deterministic, not very compressible bytes.
func body(seed string, n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint(seed, i)))
		b = append(b, sum[:]...)
	}
	return b[:n]
}

func TestS3List(t *testing.T) {
	m := testenv.StartMinIO(t)
	lister := useMinIO(t, m)
	tests := []struct {
		name    string
		objects map[string]string // key → content; keys ending in '/' are folder markers
		uri     string            // BUCKET is replaced by the row's bucket
		want    map[string]string // path → content
	}{
		{"nested keys",
			map[string]string{
				"ds/a.txt": "a", "ds/dir/b.txt": "bb", "ds/dir/sub/deep/c.bin": "ccc",
				"ds/empty": "", "ds/dir/": "", "ds/": "", // markers are not files
				"ds10/other": "not under ds/",
				// No object "ds": MinIO cannot hold an object and a prefix of
				// the same name (it hides ds/...), unlike S3.
			},
			"s3://BUCKET/ds/",
			map[string]string{"a.txt": "a", "dir/b.txt": "bb", "dir/sub/deep/c.bin": "ccc", "empty": ""}},
		{"spaces, plus signs and unicode",
			map[string]string{"p/with space/ü+plus&amp.txt": "1", "p/日本語/データ": "2", "p/emoji 🙂": "3"},
			"s3://BUCKET/p/",
			map[string]string{"with space/ü+plus&amp.txt": "1", "日本語/データ": "2", "emoji 🙂": "3"}},
		{"bucket root",
			map[string]string{"x": "1", "y/z": "2"},
			"s3://BUCKET/",
			map[string]string{"x": "1", "y/z": "2"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := fmt.Sprintf("list-%d", i)
			m.CreateBucket(t, bucket)
			for key, content := range tt.objects {
				m.Put(t, bucket, key, []byte(content))
			}
			var want []release.File
			for p, content := range tt.want {
				want = append(want, release.File{Path: p, Size: int64(len(content)), ETag: md5ETag([]byte(content))})
			}
			slices.SortFunc(want, func(a, b release.File) int { return strings.Compare(a.Path, b.Path) })

			got, err := lister.List(t.Context(), s3URI(t, strings.Replace(tt.uri, "BUCKET", bucket, 1)))
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, got, want)
		})
	}
}

func TestS3ListChecksums(t *testing.T) {
	m := testenv.StartMinIO(t)
	lister := useMinIO(t, m)
	client := m.S3Client(t)
	const bucket = "sums"
	m.CreateBucket(t, bucket)
	data := body("checksums", 1000)
	big := body("multipart", 5<<20+1000) // parts must be ≥ 5 MiB but the last

	tests := []struct {
		name   string
		upload func(t *testing.T, key string)
		want   *release.Checksum
	}{
		{"crc64nvme", putWith(client, bucket, data, types.ChecksumAlgorithmCrc64nvme),
			&release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: crc64nvmeOf(data)}},
		{"sha256", putWith(client, bucket, data, types.ChecksumAlgorithmSha256),
			&release.Checksum{Algorithm: release.ChecksumSHA256, Value: sha256Of(data)}},
		{"crc32c", putWith(client, bucket, data, types.ChecksumAlgorithmCrc32c),
			&release.Checksum{Algorithm: release.ChecksumCRC32C, Value: crc32cOf(data)}},
		{"crc32 is not recorded", putWith(client, bucket, data, types.ChecksumAlgorithmCrc32), nil},
		{"no checksum", func(t *testing.T, key string) { m.Put(t, bucket, key, data) }, nil},
		{"multipart full-object crc64nvme",
			multipartPut(client, bucket, big, types.ChecksumAlgorithmCrc64nvme, types.ChecksumTypeFullObject),
			&release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: crc64nvmeOf(big)}},
		{"multipart composite crc32c is skipped",
			multipartPut(client, bucket, big, types.ChecksumAlgorithmCrc32c, types.ChecksumTypeComposite), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(tt.name, " ", "-") + "/"
			tt.upload(t, prefix+"object")
			got, err := lister.List(t.Context(), s3URI(t, "s3://"+bucket+"/"+prefix))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Files) != 1 {
				t.Fatalf("got %d files, want 1: %+v", len(got.Files), got.Files)
			}
			if f := got.Files[0]; !sameChecksum(f.Checksum, tt.want) {
				t.Fatalf("checksum = %s, want %s", describe(f), describe(release.File{Path: f.Path, Size: f.Size, ETag: f.ETag, Checksum: tt.want}))
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// putWith returns an upload that lets the SDK compute and send a checksum.
func putWith(c *s3.Client, bucket string, data []byte, alg types.ChecksumAlgorithm) func(*testing.T, string) {
	return func(t *testing.T, key string) {
		_, err := c.PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg,
		})
		if err != nil {
			t.Fatalf("put %s with %s: %v", key, alg, err)
		}
	}
}

// multipartPut returns an upload in two parts (5 MiB and the rest) with a
// checksum of the given type. It checks that the store reports that type,
// or a composite test would pass for the wrong reason.
func multipartPut(c *s3.Client, bucket string, data []byte, alg types.ChecksumAlgorithm, typ types.ChecksumType) func(*testing.T, string) {
	return func(t *testing.T, key string) {
		t.Helper()
		ctx := t.Context()
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), ChecksumAlgorithm: alg, ChecksumType: typ,
		})
		mustDo(t, err)
		var parts []types.CompletedPart
		for i, chunk := range [][]byte{data[:5<<20], data[5<<20:]} {
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{
				Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ChecksumAlgorithm: alg,
			})
			mustDo(t, err)
			parts = append(parts, types.CompletedPart{
				PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag,
				ChecksumCRC32C: out.ChecksumCRC32C, ChecksumCRC64NVME: out.ChecksumCRC64NVME,
			})
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: aws.String(bucket), Key: aws.String(key), UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		mustDo(t, err)
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled,
		})
		mustDo(t, err)
		if head.ChecksumType != typ {
			t.Fatalf("store reports checksum type %q for %s, want %q", head.ChecksumType, key, typ)
		}
	}
}

func TestS3ListManyObjects(t *testing.T) {
	// 2500 keys cross ListObjectsV2's 1000-key pages twice, both as objects
	// (List) and as common prefixes (Versions).
	const n = 2500
	m := testenv.StartMinIO(t)
	lister := useMinIO(t, m)
	const bucket = "many"
	m.CreateBucket(t, bucket)
	putMany(t, m, bucket, n, func(i int) string { return fmt.Sprintf("ds/v%d/f", i) })

	got, err := lister.List(t.Context(), s3URI(t, "s3://many/ds/"))
	if err != nil {
		t.Fatal(err)
	}
	var want []release.File
	var wantVersions []string
	for i := range n {
		content := []byte(fmt.Sprint(i))
		want = append(want, release.File{Path: fmt.Sprintf("v%d/f", i), Size: int64(len(content)), ETag: md5ETag(content)})
		wantVersions = append(wantVersions, fmt.Sprintf("v%d", i))
	}
	slices.SortFunc(want, func(a, b release.File) int { return strings.Compare(a.Path, b.Path) })
	checkManifest(t, got, want)

	versions, err := lister.Versions(t.Context(), s3URI(t, "s3://many/ds/{VERSION}/"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, wantVersions) { // natural order: v9 < v10
		t.Fatalf("Versions() returned %d versions, want %d in natural order; first: %q", len(versions), n, versions[:min(len(versions), 12)])
	}
}

// putMany uploads n small objects, key(i) holding the text of i, with a few
// uploads in flight.
func putMany(t *testing.T, m *testenv.MinIO, bucket string, n int, key func(int) string) {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				m.Put(t, bucket, key(i), []byte(fmt.Sprint(i)))
			}
		})
	}
	wg.Wait()
}

func TestS3Errors(t *testing.T) {
	m := testenv.StartMinIO(t)
	lister := useMinIO(t, m)
	const bucket = "errs"
	m.CreateBucket(t, bucket)
	m.Put(t, bucket, "full/a", []byte("a"))
	m.Put(t, bucket, "markers/", nil)
	m.Put(t, bucket, "markers/sub/", nil)

	tests := []struct {
		name     string
		uri      string
		versions bool // call Versions instead of List
		want     []string
	}{
		{"no such bucket", "s3://no-such-bucket/x/", false, []string{"list objects: NoSuchBucket: The specified bucket does not exist"}},
		{"no such bucket for versions", "s3://no-such-bucket/{VERSION}/", true, []string{"NoSuchBucket"}},
		{"empty prefix", "s3://errs/nothing/", false, []string{"no objects under prefix"}},
		{"folder markers only", "s3://errs/markers/", false, []string{"no objects under prefix"}},
		{"unresolved placeholder", "s3://errs/{VERSION}/", false, []string{"{VERSION} placeholder must be resolved"}},
		{"versions without placeholder", "s3://errs/full/", true, []string{"{VERSION} placeholder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := s3URI(t, tt.uri)
			var err error
			if tt.versions {
				_, err = lister.Versions(t.Context(), src)
			} else {
				_, err = lister.List(t.Context(), src)
			}
			wantError(t, err, append(tt.want, "source: "+tt.uri+": "))
			// The SDK's request IDs and operation chain are noise to a user.
			if strings.Contains(err.Error(), "RequestID") || strings.Contains(err.Error(), "operation error") {
				t.Errorf("error %q is not readable", err)
			}
		})
	}
}

func TestS3Config(t *testing.T) {
	m := testenv.StartMinIO(t)
	useMinIO(t, m)
	const bucket = "cfg"
	m.CreateBucket(t, bucket)
	m.Put(t, bucket, "ds/a", []byte("a"))
	src := s3URI(t, "s3://cfg/ds/")

	tests := []struct {
		name string
		env  map[string]string // "" unsets
		opts source.Options
		want string // error substring; "" for success
	}{
		{"endpoint from AWS_ENDPOINT_URL_S3", nil, source.Options{}, ""},
		{"endpoint from AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL": m.Endpoint}, source.Options{}, ""},
		{"endpoint from Options", map[string]string{"AWS_ENDPOINT_URL_S3": ""}, source.Options{Endpoint: m.Endpoint}, ""},
		{"no region configured", map[string]string{"AWS_REGION": ""}, source.Options{}, ""},
		{"wrong secret key", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-secret"}, source.Options{}, "SignatureDoesNotMatch"},
		{"unknown access key", map[string]string{"AWS_ACCESS_KEY_ID": "nobody"}, source.Options{}, "InvalidAccessKeyId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
				if v == "" {
					mustDo(t, os.Unsetenv(k)) // t.Setenv still restores it
				}
			}
			s, err := source.NewS3(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.List(t.Context(), src)
			if tt.want != "" {
				wantError(t, err, []string{"source: s3://cfg/ds/: list objects: " + tt.want})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, got, []release.File{{Path: "a", Size: 1, ETag: md5ETag([]byte("a"))}})
		})
	}
}

func TestS3Versions(t *testing.T) {
	m := testenv.StartMinIO(t)
	lister := useMinIO(t, m)
	const bucket = "rel"
	m.CreateBucket(t, bucket)
	for _, key := range []string{
		"idx/2024-01-01T00-00-00/shards/a",
		"idx/2024-03-01T00-00-00/shards/a",
		"idx/2024-05-01T00-00-00/shards/a",
		"idx/2024-06-01T00-00-00/meta", // no shards/ yet
		"emb/2024-01-01T00-00-00/x",
		"emb/2024-03-01T00-00-00/x",
		"emb/2024-04-01T00-00-00/x",
		"emb/2024-05-01T00-00-00/", // a console folder, nothing in it
		"emb/2024-06-01T00-00-00/x",
		"emb/not a version/x",
		"emb/2024-07-01T00-00-00", // an object, not a prefix
		"models/model-v9.d/w",
		"models/model-v10.d/w",
		"models/other-v11.d/w",
		"models/model-v12.x/w",
	} {
		content := []byte("x")
		if strings.HasSuffix(key, "/") {
			content = nil
		}
		m.Put(t, bucket, key, content)
	}
	idx, emb := s3URI(t, "s3://rel/idx/{VERSION}/shards/"), s3URI(t, "s3://rel/emb/{VERSION}/")
	models := s3URI(t, "s3://rel/models/model-{VERSION}.d/")

	t.Run("Versions", func(t *testing.T) {
		tests := []struct {
			src  release.Source
			want []string
		}{
			{idx, []string{"2024-01-01T00-00-00", "2024-03-01T00-00-00", "2024-05-01T00-00-00"}},
			{emb, []string{"2024-01-01T00-00-00", "2024-03-01T00-00-00", "2024-04-01T00-00-00", "2024-06-01T00-00-00"}},
			{models, []string{"v9", "v10"}},
			{s3URI(t, "s3://rel/nothing/{VERSION}/"), nil},
		}
		for _, tt := range tests {
			t.Run(tt.src.String(), func(t *testing.T) {
				got, err := lister.Versions(t.Context(), tt.src)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("Versions() = %q, want %q", got, tt.want)
				}
			})
		}
	})

	// A file:// dataset next to the S3 ones, for the mixed-scheme row.
	local := t.TempDir()
	writeTree(t, local, map[string]string{"2024-03-01T00-00-00/f": "x", "2024-06-01T00-00-00/f": "x"})
	localSrc := fileURI(t, filepath.Join(local, "{VERSION}"))

	t.Run("ResolveVersion", func(t *testing.T) {
		tests := []struct {
			name    string
			srcs    []release.Source
			want    string
			wantErr []string
		}{
			// 2024-05 would win if the folder marker counted, 2024-06 if
			// the missing shards/ went unnoticed.
			{"newest common", []release.Source{idx, emb}, "2024-03-01T00-00-00", nil},
			{"one dataset", []release.Source{models}, "v10", nil},
			{"s3 and file", []release.Source{emb, localSrc}, "2024-06-01T00-00-00", nil},
			{"no common version", []release.Source{idx, models}, "", []string{
				"no version is present under every dataset",
				idx.String() + " has 3 (newest 2024-05-01T00-00-00)",
				models.String() + " has 2 (newest v10)",
			}},
			{"dataset without versions", []release.Source{idx, s3URI(t, "s3://rel/nothing/{VERSION}/")}, "",
				[]string{"s3://rel/nothing/{VERSION}/: no versions found"}},
		}
		mux := source.NewMux(source.Options{})
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := source.ResolveVersion(t.Context(), mux, tt.srcs)
				if tt.wantErr != nil {
					wantError(t, err, tt.wantErr)
					return
				}
				if err != nil || got != tt.want {
					t.Fatalf("ResolveVersion() = %q, %v; want %q", got, err, tt.want)
				}
			})
		}
	})
}
