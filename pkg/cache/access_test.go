package cache_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// accessEnv is MinIO with two prefixes and three users besides root:
// the node (its environment's chain) reads public/ only, alice reads
// private/ and public/, bob reads nothing.
type accessEnv struct {
	*s3Env
	private, public release.Release
	alice, bob      *source.Credentials
	// nodeKey and aliceKey are access key IDs, to tell whose requests
	// the proxy saw.
	nodeKey, aliceKey string
}

func newAccessEnv(t *testing.T) *accessEnv {
	t.Helper()
	e := &accessEnv{s3Env: newS3Env(t)}
	for _, prefix := range []string{"private/v1/", "public/v1/"} {
		e.put(t, prefix+"a.bin", bytes.NewReader(content(prefix+"a", 3<<20+17)), "")
		e.put(t, prefix+"sub/b.bin", bytes.NewReader(content(prefix+"b", 1000)), "")
		e.put(t, prefix+"empty", bytes.NewReader(nil), "")
	}
	e.private = e.publish(t, "private", "v1", 1, map[string]string{"idx": "private/v1/"})
	e.public = e.publish(t, "public", "v1", 1, map[string]string{"idx": "public/v1/"})
	e.alice, e.aliceKey = e.user(t, bucket+"/private/", bucket+"/public/")
	e.bob, _ = e.user(t)
	nodeAK, nodeSK := e.m.AddUser(t, bucket+"/public/")
	t.Setenv("AWS_ACCESS_KEY_ID", nodeAK)
	t.Setenv("AWS_SECRET_ACCESS_KEY", nodeSK)
	e.nodeKey = nodeAK
	return e
}

// user adds a MinIO user that can read the given prefixes and returns its
// credentials and access key ID.
func (e *accessEnv) user(t *testing.T, readable ...string) (*source.Credentials, string) {
	t.Helper()
	ak, sk := e.m.AddUser(t, readable...)
	c, err := source.NewCredentials(ak, sk, "")
	if err != nil {
		t.Fatal(err)
	}
	return c, ak
}

// newCache opens a cache at root whose reader can sign with volumes'
// credentials (the plugin's ReaderMux), through the proxy.
func (e *accessEnv) newCache(t *testing.T, root string) *cache.Cache {
	t.Helper()
	r := source.NewReaderMux(source.FetchOptions{Endpoint: e.proxy.URL, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	c, err := cache.New(cache.Options{Root: root, Reader: r, PartSize: cache.MinPartSize, Requests: 8, CommitInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// probes counts the 1-byte ranged GETs of a release's objects signed with
// accessKey seen so far. Counting by key matters: a probe of someone
// else's that was cancelled in flight may reach the proxy after the call
// that made it returned.
func (e *accessEnv) probes(prefix, accessKey string) int {
	n := 0
	for _, r := range e.proxy.Ranges() {
		if r.Start == 0 && r.End == 0 && r.AccessKey == accessKey && strings.HasPrefix(r.Path, "/"+bucket+"/"+prefix) {
			n++
		}
	}
	return n
}

func wantDenied(t *testing.T, err error, who string) {
	t.Helper()
	if !errors.Is(err, source.ErrDenied) || !strings.Contains(err.Error(), "s3://"+bucket+"/") {
		t.Fatalf("%s: %v, want ErrDenied naming an object", who, err)
	}
}

// TestAccessSharedStore: a release in the shared store is given to no
// caller whose credentials cannot read it, whoever downloaded it; a
// download started for a volume uses that volume's credentials.
func TestAccessSharedStore(t *testing.T) {
	e := newAccessEnv(t)
	c := e.newCache(t, t.TempDir())
	ctx := t.Context()

	// The node's credentials cannot download private/ ...
	wantDenied(t, c.Ensure(ctx, e.private), "the node's download of private/")
	if c.Stored("private", "v1") {
		t.Fatal("a denied download was installed")
	}
	// ... alice's can: her download used her credentials.
	if err := c.EnsureFor(ctx, e.private, e.alice); err != nil {
		t.Fatalf("alice's download: %v", err)
	}
	checkStored(t, c, e.private, map[string][]byte{
		"idx/a.bin": content("private/v1/a", 3<<20+17), "idx/sub/b.bin": content("private/v1/b", 1000), "idx/empty": {},
	})
	// Stored now, and still refused to bob and to the node.
	wantDenied(t, c.EnsureFor(ctx, e.private, e.bob), "bob, the release stored")
	wantDenied(t, c.Ensure(ctx, e.private), "the node, the release stored")
	wantDenied(t, c.Authorize(ctx, e.private, e.bob), "bob's Authorize")
	if _, err := os.Stat(c.Layout().VolumeFetchedFile("private", "v1")); err != nil {
		t.Errorf("alice's release is not marked as fetched by a volume: %v", err)
	}

	// One probe per non-empty object for alice (after her download), once:
	// a second call is answered from memory.
	before := e.probes("private/", e.aliceKey)
	if err := c.EnsureFor(ctx, e.private, e.alice); err != nil {
		t.Fatal(err)
	}
	if got := e.probes("private/", e.aliceKey) - before; got != 0 {
		t.Errorf("alice's second call probed %d objects, want 0 (proved once per process)", got)
	}
}

// TestAccessNodeProof: the node's credentials need no proof for what they
// fetched; a release a volume fetched is proved for them once, and the
// proof then outlives the process (the mark is cleared).
func TestAccessNodeProof(t *testing.T) {
	e := newAccessEnv(t)
	root := t.TempDir()
	c := e.newCache(t, root)
	ctx := t.Context()
	if err := c.EnsureFor(ctx, e.public, e.alice); err != nil {
		t.Fatal(err)
	}
	wantDenied(t, c.EnsureFor(ctx, e.public, e.bob), "bob on public/")
	before := e.probes("public/", e.nodeKey)
	if err := c.Ensure(ctx, e.public); err != nil {
		t.Fatalf("the node on public/ that alice fetched: %v", err)
	}
	if got := e.probes("public/", e.nodeKey) - before; got != 2 {
		t.Errorf("the node's proof probed %d objects, want the 2 non-empty ones", got)
	}
	if _, err := os.Stat(c.Layout().VolumeFetchedFile("public", "v1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the mark outlived the node's proof: %v", err)
	}
	// A restarted process: the node needs no new proof, bob still does.
	c2 := e.newCache(t, root)
	before = e.probes("public/", e.nodeKey)
	if err := c2.Ensure(ctx, e.public); err != nil {
		t.Fatal(err)
	}
	if got := e.probes("public/", e.nodeKey) - before; got != 0 {
		t.Errorf("after a restart the node probed %d objects of a release it proved, want 0", got)
	}
	wantDenied(t, c2.EnsureFor(ctx, e.public, e.bob), "bob after a restart")
}

// TestAccessFailedFlightOfOthers: a download started with credentials
// that are refused fails for them only; a caller with other credentials
// that joined it starts its own.
func TestAccessFailedFlightOfOthers(t *testing.T) {
	e := newAccessEnv(t)
	c := e.newCache(t, t.TempDir())
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	// Bob's refusals come slowly, so that alice's call finds his download
	// running and joins it (the test holds whichever way it goes).
	e.proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 300 * time.Millisecond})
	bob := make(chan error, 1)
	go func() { bob <- c.EnsureFor(ctx, e.private, e.bob) }()
	for e.proxy.Requests() == 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	e.proxy.SetFaults(testenv.Faults{})
	if err := c.EnsureFor(ctx, e.private, e.alice); err != nil {
		t.Fatalf("alice, after bob's download failed: %v", err)
	}
	wantDenied(t, <-bob, "bob's own download")
}
