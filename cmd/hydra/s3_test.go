package main

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

const (
	january  = "2024-01-01T00-00-00"
	february = "2024-02-01T00-00-00"
)

// startS3 starts MinIO with a bucket "datasets" and points the AWS SDK's
// standard environment at it. t.Setenv rules out t.Parallel, as it must:
// the SDK reads the process environment.
func startS3(t *testing.T) *testenv.MinIO {
	t.Helper()
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	// A developer's ~/.aws files must not add a profile or endpoint.
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	m.CreateBucket(t, "datasets")
	return m
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestPublishS3(t *testing.T) {
	m := startS3(t)
	// The model has January and February, the config only January: the
	// newest version present in both is January.
	m.Put(t, "datasets", "models/"+january+"/weights.bin", randomBytes(70_000))
	m.Put(t, "datasets", "models/"+january+"/shards/part-0", randomBytes(1_000))
	m.Put(t, "datasets", "models/"+january+"/shards/part-1", randomBytes(2_000))
	m.Put(t, "datasets", "models/"+february+"/weights.bin", randomBytes(10))
	m.Put(t, "datasets", "config/"+january+"/settings.json", []byte(`{"threads": 8}`))

	h := newHarness(t)
	h.createChannel("search")

	var resp api.PublishResponse
	decodeJSON(t, h.ok("-o", "json", "publish", "search",
		"--dataset", "model=s3://datasets/models/{VERSION}/",
		"--dataset", "config=s3://datasets/config/{VERSION}/",
		"--version", "auto"), &resp)
	if resp.Release.Version != january || !resp.Promoted || resp.Head != january {
		t.Fatalf("publish = %+v, want %s promoted", resp, january)
	}
	if resp.Release.Files != 4 || resp.Release.Bytes != 70_000+1_000+2_000+int64(len(`{"threads": 8}`)) {
		t.Errorf("published %d files, %d bytes; want 4 files and the objects' bytes", resp.Release.Files, resp.Release.Bytes)
	}

	rel, err := h.admin.GetManifest(t.Context(), "search", january)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rel.Datasets {
		prefix := map[string]string{"model": "models/" + january + "/", "config": "config/" + january + "/"}[d.Name]
		if want := "s3://datasets/" + prefix; d.Source != want {
			t.Errorf("dataset %s source = %s, want %s", d.Name, d.Source, want)
		}
		checkS3Manifest(t, m, prefix, d.Manifest)
	}

	t.Run("empty prefix", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "search", "--dataset", "x=s3://datasets/nothing-here/", "--version", "v1"},
			"dataset x", "s3://datasets/nothing-here/", "no objects")
	})
	t.Run("no common version", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "search",
			"--dataset", "model=s3://datasets/models/{VERSION}/", "--dataset", "other=s3://datasets/other/{VERSION}/"},
			"--version auto", "s3://datasets/other/{VERSION}/")
	})
	t.Run("explicit version", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("publish", "search", "--dataset", "model=s3://datasets/models/{VERSION}/", "--version", february, "--allow-dataset-change")
		wantText(t, out, "published search/"+february, "model", "10 B", "s3://datasets/models/"+february+"/", "promoted: head is "+february)
	})
	t.Run("missing bucket", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "search", "--dataset", "x=s3://no-such-bucket/p/", "--version", "v2"},
			"no-such-bucket", "NoSuchBucket")
	})
}

// checkS3Manifest compares a manifest with what MinIO lists under prefix:
// the same paths, sizes and ETags, in order.
func checkS3Manifest(t *testing.T, m *testenv.MinIO, prefix string, got release.Manifest) {
	t.Helper()
	out, err := m.S3Client(t).ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{
		Bucket: aws.String("datasets"), Prefix: aws.String(prefix),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != len(out.Contents) {
		t.Fatalf("manifest under %s has %d files, MinIO has %d objects", prefix, len(got.Files), len(out.Contents))
	}
	for i, obj := range out.Contents {
		want := release.File{Path: strings.TrimPrefix(aws.ToString(obj.Key), prefix), Size: aws.ToInt64(obj.Size), ETag: aws.ToString(obj.ETag)}
		f := got.Files[i]
		if f.Path != want.Path || f.Size != want.Size || f.ETag != want.ETag || want.ETag == "" {
			t.Errorf("manifest file %d = %s %d %s, MinIO has %s %d %s", i, f.Path, f.Size, f.ETag, want.Path, want.Size, want.ETag)
		}
	}
}
