//go:build linux

package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Dataset is the name of the one dataset of every release Publish makes.
const Dataset = "data"

// File is one file of a generated release: its content is a function of
// Seed alone, so that it can be made again to upload and is known by its
// checksum.
type File struct {
	Name   string
	Size   int64
	Seed   uint64
	SHA256 string
}

// Release is a generated release: its files and their total size.
type Release struct {
	Files []File
	Bytes int64
}

// MixedRelease generates a release of about total bytes shaped like real
// datasets: one large file of half the total, a few medium ones of a
// quarter together, and the last quarter in many small files (1 KiB to
// 1 MiB, some empty) spread over nested directories. The same seed and
// total give the same files, byte for byte.
func MixedRelease(seed uint64, total int64) Release {
	rng := rand.New(rand.NewPCG(seed, 0x5eed)) //nolint:gosec // G404: test data, not secrets
	var r Release
	add := func(name string, size int64) {
		f := File{Name: name, Size: size, Seed: rng.Uint64()}
		f.SHA256 = f.sum()
		r.Files = append(r.Files, f)
		r.Bytes += size
	}
	add("model/weights.bin", total/2)
	const medium = 6
	for i := range medium {
		add(fmt.Sprintf("shards/shard-%02d.bin", i), total/4/medium)
	}
	for i := 0; r.Bytes < total; i++ {
		size := min(int64(1)<<(10+rng.IntN(11)), total-r.Bytes) // 1 KiB .. 1 MiB
		if i%97 == 0 {
			size = 0
		}
		add(fmt.Sprintf("index/%02d/part-%05d.idx", i%16, i), size)
	}
	return r
}

// contentReader is a file's bytes: ChaCha8 output of its seed.
func (f File) contentReader() io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], f.Seed)
	return io.LimitReader(rand.NewChaCha8(key), f.Size)
}

// Content returns the file's bytes.
func (f File) Content() []byte {
	b, _ := io.ReadAll(f.contentReader()) // a ChaCha8 stream never fails
	return b
}

func (f File) sum() string {
	h := sha256.New()
	_, _ = io.Copy(h, f.contentReader())
	return hex.EncodeToString(h.Sum(nil))
}

// Publish uploads the release's files to s3://data/CHANNEL/VERSION/ on
// MinIO (directly, not through the counting proxy), lists them as the
// publish path does and publishes them as the release's one dataset,
// Dataset, creating the channel if needed; the head moves to it.
func (f *Fleet) Publish(t testing.TB, channel, version string, r Release) {
	t.Helper()
	prefix := channel + "/" + version + "/"
	for _, file := range r.Files {
		// With a stored checksum, which the publish records: peers send
		// only files whose manifest has one.
		f.MinIO.PutChecksummed(t, f.bucket, prefix+file.Name, file.Content())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src, err := release.ParseSource("s3://" + f.bucket + "/" + prefix)
	if err != nil {
		t.Fatalf("fleet: %v", err)
	}
	lister, err := source.NewS3(ctx, source.Options{Endpoint: f.MinIO.Endpoint})
	if err != nil {
		t.Fatalf("fleet: %v", err)
	}
	man, err := lister.List(ctx, src)
	if err != nil {
		t.Fatalf("fleet: list %s: %v", src, err)
	}
	if _, err := f.Admin.CreateChannel(ctx, channel, release.Config{}); err != nil && !client.IsConflict(err) {
		t.Fatalf("fleet: create channel %s: %v", channel, err)
	}
	_, err = f.Admin.Publish(ctx, channel, api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: Dataset, Source: src.String(), Manifest: man}}})
	if err != nil {
		t.Fatalf("fleet: publish %s/%s: %v", channel, version, err)
	}
}

// StageAll stages channel on the given nodes (all when none are given) at
// once, each retried for up to limit, and returns when every one is
// installed how long each took from the call, by node index.
func (f *Fleet) StageAll(t testing.TB, limit time.Duration, channel string, nodes ...*Node) map[int]time.Duration {
	t.Helper()
	if len(nodes) == 0 {
		nodes = f.Nodes
	}
	start := time.Now()
	took := make(map[int]time.Duration, len(nodes))
	errs := make([]error, len(nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			errs[i] = n.StageUntil(limit, channel, nil)
			mu.Lock()
			took[n.Index] = time.Since(start)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return took
}

// WaitReady waits until the manager's node reports (the status API, what
// `hydra status` shows) say that every given node (all when none) holds
// channel's version ready, and returns the reports.
func (f *Fleet) WaitReady(t testing.TB, limit time.Duration, channel, version string, nodes ...*Node) []api.NodeReport {
	t.Helper()
	if len(nodes) == 0 {
		nodes = f.Nodes
	}
	deadline := time.Now().Add(limit)
	for {
		reports, missing, err := f.readiness(channel, version, nodes)
		if err == nil && len(missing) == 0 {
			return reports
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet: %s/%s not ready on %v after %v (last error: %v)", channel, version, missing, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (f *Fleet) readiness(channel, version string, nodes []*Node) ([]api.NodeReport, []string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reports, err := f.Admin.ListNodes(ctx)
	if err != nil {
		return nil, names(nodes), err
	}
	var missing []string
	for _, n := range nodes {
		if p, ok := Progress(reports, n.Name, channel, version); !ok || p.State != release.StateReady {
			missing = append(missing, n.Name)
		}
	}
	return reports, missing, nil
}

// Progress finds a node's progress on a release in the manager's reports.
func Progress(reports []api.NodeReport, node, channel, version string) (release.Progress, bool) {
	for _, r := range reports {
		if r.Node != node {
			continue
		}
		for _, p := range r.Releases {
			if p.Channel == channel && p.Version == version {
				return p, true
			}
		}
	}
	return release.Progress{}, false
}

func names(nodes []*Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// StoreDir is where a node keeps a release's dataset once installed.
func (n *Node) StoreDir(channel, version string) string {
	return filepath.Join(n.Root, "store", channel, version, Dataset)
}

// VerifyStores checks that every given node (all when none) holds the
// release installed byte for byte: the same file names, sizes and
// SHA-256 as generated, and nothing else.
func (f *Fleet) VerifyStores(t testing.TB, channel, version string, r Release, nodes ...*Node) {
	t.Helper()
	if len(nodes) == 0 {
		nodes = f.Nodes
	}
	for _, n := range nodes {
		if err := verifyStore(n.StoreDir(channel, version), r); err != nil {
			t.Errorf("fleet: %s: %v", n.Name, err)
		}
	}
}

func verifyStore(dir string, r Release) error {
	want := make(map[string]File, len(r.Files))
	for _, f := range r.Files {
		want[f.Name] = f
	}
	var problems []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		f, ok := want[rel]
		delete(want, rel)
		if !ok {
			problems = append(problems, rel+": not in the release")
			return nil
		}
		if got, err := fileSum(path); err != nil {
			problems = append(problems, err.Error())
		} else if got != f.SHA256 {
			problems = append(problems, fmt.Sprintf("%s: sha256 %s, want %s", rel, got, f.SHA256))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk %s: %w", dir, err)
	}
	missing := make([]string, 0, len(want))
	for name := range want {
		missing = append(missing, name)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("%d files missing, first %s", len(missing), missing[0]))
	}
	if len(problems) > 0 {
		return fmt.Errorf("store %s differs from the release: %s", dir, strings.Join(problems, "; "))
	}
	return nil
}

func fileSum(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, file); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// OriginBytes is what the origin served the nodes so far: body bytes of
// successful responses counted at the proxy in front of MinIO.
func (f *Fleet) OriginBytes() int64 { return f.Origin.BytesServed() }
