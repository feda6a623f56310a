package cache_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

const bucket = "data"

// s3Env is a real MinIO, reached through the standard AWS environment,
// and a fault proxy in front of it whose byte counter tells what a
// download fetched.
type s3Env struct {
	m     *testenv.MinIO
	proxy *testenv.FaultProxy
	s3    *s3.Client
}

func newS3Env(t *testing.T) *s3Env {
	t.Helper()
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	m.CreateBucket(t, bucket)
	return &s3Env{m: m, proxy: testenv.StartFaultProxy(t, m.Endpoint), s3: m.S3Client(t)}
}

// put uploads an object; with a checksum algorithm, S3 stores that digest.
func (e *s3Env) put(t *testing.T, key string, body io.ReadSeeker, alg types.ChecksumAlgorithm) {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}
	if alg != "" {
		in.ChecksumAlgorithm = alg
	}
	if _, err := e.s3.PutObject(context.Background(), in); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// publish lists the uploaded prefixes into a release, as `hydra publish` does.
func (e *s3Env) publish(t *testing.T, channel, version string, seq uint64, datasets map[string]string) release.Release {
	t.Helper()
	lister, err := source.NewS3(context.Background(), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rel := release.Release{Channel: channel, Version: version, Seq: seq, CreatedAt: time.Now().UTC()}
	for name, prefix := range datasets {
		src, err := release.ParseSource("s3://" + bucket + "/" + prefix)
		if err != nil {
			t.Fatal(err)
		}
		m, err := lister.List(context.Background(), src)
		if err != nil {
			t.Fatalf("list %s: %v", src, err)
		}
		rel.Datasets = append(rel.Datasets, release.Dataset{Name: name, Source: src.String(), Manifest: m})
	}
	if err := rel.Validate(); err != nil {
		t.Fatal(err)
	}
	return rel
}

// newCache opens a cache whose requests go through the fault proxy, with
// small parts so that modest files span many of them.
func (e *s3Env) newCache(t *testing.T, root string) *cache.Cache {
	t.Helper()
	r, err := source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{
		Endpoint: e.proxy.URL, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{Root: root, Reader: r, PartSize: cache.MinPartSize, Requests: 8, CommitInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ensure(t *testing.T, c *cache.Cache, rel release.Release) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return c.Ensure(ctx, rel)
}

// content is deterministic test data: n bytes derived from a name.
func content(name string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", name, i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// checkStored compares every file of a stored release with want.
func checkStored(t *testing.T, c *cache.Cache, rel release.Release, want map[string][]byte) {
	t.Helper()
	dir := c.Layout().StoreDir(rel.Channel, rel.Version)
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Root-owned and not writable by anyone else; see install.
			if fi, _ := d.Info(); fi.Mode().Perm()&0o022 != 0 {
				return fmt.Errorf("directory %s is writable by group or others (%v)", p, fi.Mode())
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		exp, ok := want[filepath.ToSlash(rel)]
		if !ok {
			return fmt.Errorf("unexpected file %s", rel)
		}
		if !bytes.Equal(got, exp) {
			return fmt.Errorf("%s: %d bytes differ from the %d published", rel, len(got), len(exp))
		}
		if fi, _ := d.Info(); fi.Mode().Perm()&0o222 != 0 {
			return fmt.Errorf("%s is writable (%v)", rel, fi.Mode())
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("%d files stored, %d published", n, len(want))
	}
	if _, err := os.Stat(c.Layout().TmpDir(rel.Channel, rel.Version)); !os.IsNotExist(err) {
		t.Fatalf("tmp dir left after install: %v", err)
	}
}
