package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// directPeers hands a cache's peer requests straight to other caches'
// OpenRange, in process: the seam between fetching and serving, without
// HTTP (pkg/peer tests the wire; tests/fleet the whole).
type directPeers struct {
	plan   *peer.Plan
	stores map[string]*cache.Cache
	// lie names peers that flip the first byte of every range they send.
	lie map[string]bool

	mu   sync.Mutex
	sent map[string]int64
}

func (d *directPeers) Plan(string, string, release.Identity) *peer.Plan { return d.plan }

func (d *directPeers) ReadRange(ctx context.Context, to release.Peer, r peer.RangeRequest, wait time.Duration, w io.Writer) (int64, error) {
	rc, err := d.stores[to.Node].OpenRange(ctx, r, wait)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		return 0, err
	}
	if d.lie[to.Node] && len(b) > 0 {
		b[0] ^= 0xff
	}
	d.mu.Lock()
	d.sent[to.Node] += int64(len(b))
	d.mu.Unlock()
	n, err := w.Write(b)
	return int64(n), err
}

func (e *s3Env) newPeerCache(t *testing.T, peers cache.Peers, reader source.Reader, reg prometheus.Registerer) *cache.Cache {
	t.Helper()
	if reader == nil {
		var err error
		reader, err = source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{
			Endpoint: e.proxy.URL, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: reader, PartSize: cache.MinPartSize, Requests: 8,
		CommitInterval: 20 * time.Millisecond, Peers: peers, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// peerRelease uploads a release of files with checksums (what peers may
// send) and one without (origin only).
func peerRelease(t *testing.T, e *s3Env) (release.Release, map[string][]byte) {
	t.Helper()
	want := map[string][]byte{}
	add := func(path string, body []byte, alg types.ChecksumAlgorithm) {
		want["d/"+path] = body
		e.put(t, "p/"+path, bytes.NewReader(body), alg)
	}
	add("big.bin", content("big", 4<<20+999), types.ChecksumAlgorithmCrc64nvme)
	add("sha.bin", content("sha", 2<<20+5), types.ChecksumAlgorithmSha256)
	for i := range 20 {
		add(fmt.Sprintf("small/%02d", i), content(fmt.Sprint("s", i), 1000+i*37), types.ChecksumAlgorithmCrc32c)
	}
	add("plain.bin", content("plain", 1<<20+3), "")
	return e.publish(t, "ch", "v1", 1, map[string]string{"d": "p/"}), want
}

func fileSize(want map[string][]byte, path string) int64 { return int64(len(want[path])) }

// TestPeerFetchFromHolder: a node whose peer holds the release takes every
// file with a checksum from it and only the rest from the origin; the
// bytes are the published ones, the release is marked until the node's
// own credentials proved they read it, and the split is reported.
func TestPeerFetchFromHolder(t *testing.T) {
	e := newS3Env(t)
	rel, want := peerRelease(t, e)
	holder := e.newPeerCache(t, nil, nil, nil)
	if err := ensure(t, holder, rel); err != nil {
		t.Fatal(err)
	}
	peers := &directPeers{stores: map[string]*cache.Cache{"a": holder}, sent: map[string]int64{},
		plan: peer.NewPlan("b", release.PeerSet{Channel: "ch", Version: "v1",
			Holders: []release.Peer{{Node: "a", Address: "10.0.0.1:7470"}}})}
	node := e.newPeerCache(t, peers, nil, nil)
	before := e.proxy.BytesServed()
	if err := ensure(t, node, rel); err != nil {
		t.Fatal(err)
	}
	checkStored(t, node, rel, want)
	var total int64
	for _, b := range want {
		total += int64(len(b))
	}
	plain := fileSize(want, "d/plain.bin")
	fromPeers, fromOrigin := node.Sourced("ch", "v1")
	if fromPeers != total-plain || fromOrigin != plain {
		t.Errorf("Sourced = %d from peers, %d from origin; want %d and %d", fromPeers, fromOrigin, total-plain, plain)
	}
	// The origin sent the file without a checksum, and one byte of each
	// other object: the proof of the node's own credentials.
	if got, limit := e.proxy.BytesServed()-before, plain+int64(len(want)); got > limit {
		t.Errorf("origin served %d bytes to the node, want at most %d", got, limit)
	}
	if peers.sent["a"] != total-plain {
		t.Errorf("peer sent %d bytes, want %d", peers.sent["a"], total-plain)
	}
	if !node.Authorized("ch", "v1", nil) {
		t.Error("the node's credentials are not authorized after Ensure; the proof should have cleared the mark")
	}
}

// TestLyingPeer: a peer that sends wrong bytes is caught by verification;
// its files are fetched again from the origin, the peer is avoided for
// the release, and the metric names it.
func TestLyingPeer(t *testing.T) {
	e := newS3Env(t)
	rel, want := peerRelease(t, e)
	holder := e.newPeerCache(t, nil, nil, nil)
	if err := ensure(t, holder, rel); err != nil {
		t.Fatal(err)
	}
	peers := &directPeers{stores: map[string]*cache.Cache{"liar": holder}, lie: map[string]bool{"liar": true},
		sent: map[string]int64{},
		plan: peer.NewPlan("b", release.PeerSet{Channel: "ch", Version: "v1",
			Holders: []release.Peer{{Node: "liar", Address: "10.0.0.9:7470"}}})}
	reg := prometheus.NewRegistry()
	node := e.newPeerCache(t, peers, nil, reg)
	if err := ensure(t, node, rel); err != nil {
		t.Fatal(err)
	}
	checkStored(t, node, rel, want)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var counted float64
	for _, mf := range mfs {
		if mf.GetName() == "hydra_peer_verify_failures_total" {
			counted = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if counted < 1 {
		t.Errorf("hydra_peer_verify_failures_total = %v, want at least 1", counted)
	}
	// Every file the liar touched came again from the origin: all but
	// the first parts it sent before verification caught it.
	if _, fromOrigin := node.Sourced("ch", "v1"); fromOrigin < fileSize(want, "d/big.bin") {
		t.Errorf("%d bytes from the origin; the liar's files should have been fetched again from it", fromOrigin)
	}
}

// gateReader holds back ranges at or past an offset of one file until
// released, so that a download stays in flight with a known set of parts.
type gateReader struct {
	source.Reader
	path string
	from int64
	open chan struct{}
}

func (g *gateReader) ReadRange(ctx context.Context, src release.Source, f release.File, off, n int64, w io.Writer) error {
	if f.Path == g.path && off >= g.from {
		select {
		case <-g.open:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Reader.ReadRange(ctx, src, f, off, n, w)
}

// TestServeFromDownloadInFlight: a download in flight serves the parts it
// journaled, answers ErrNotYet for the others (after waiting), and the
// rest once they arrive; it refuses what it does not hold.
func TestServeFromDownloadInFlight(t *testing.T) {
	e := newS3Env(t)
	rel, want := peerRelease(t, e)
	inner, err := source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{Endpoint: e.proxy.URL})
	if err != nil {
		t.Fatal(err)
	}
	gate := &gateReader{Reader: inner, path: "big.bin", from: 2 * cache.MinPartSize, open: make(chan struct{})}
	c := e.newPeerCache(t, nil, gate, nil)
	done := make(chan error, 1)
	go func() { done <- ensure(t, c, rel) }()
	ctx := context.Background()
	big := want["d/big.bin"]
	req := peer.RangeRequest{Channel: "ch", Version: "v1", Identity: rel.Identity(), Dataset: "d", Path: "big.bin", Off: 100, N: cache.MinPartSize}
	rc, err := c.OpenRange(ctx, req, 20*time.Second)
	if err != nil {
		t.Fatalf("journaled part: %v", err)
	}
	got, _ := io.ReadAll(rc)
	_ = rc.Close()
	if !bytes.Equal(got, big[100:100+cache.MinPartSize]) {
		t.Fatal("a journaled part served other bytes than the published ones")
	}
	late := req
	late.Off = 3 * cache.MinPartSize
	late.N = 10
	if _, err := c.OpenRange(ctx, late, 100*time.Millisecond); !errors.Is(err, peer.ErrNotYet) {
		t.Fatalf("held-back part: err = %v, want ErrNotYet", err)
	}
	for _, bad := range []peer.RangeRequest{
		{Channel: "ch", Version: "v1", Dataset: "d", Path: "../../etc/passwd", N: 1},
		{Channel: "ch", Version: "v1", Dataset: "d", Path: "/etc/passwd", N: 1},
		{Channel: "ch", Version: "v1", Dataset: "..", Path: "x", N: 1},
		{Channel: "ch", Version: "v1", Dataset: "d", Path: "missing.bin", N: 1},
		{Channel: "ch", Version: "v2", Dataset: "d", Path: "big.bin", N: 1},
		{Channel: "other", Version: "v1", Dataset: "d", Path: "big.bin", N: 1},
		{Channel: "ch", Version: "v1", Identity: release.Identity{Seq: 99, CreatedAt: time.Unix(1, 0)}, Dataset: "d", Path: "big.bin", N: 1},
	} {
		if _, err := c.OpenRange(ctx, bad, 0); !errors.Is(err, peer.ErrNotHeld) {
			t.Errorf("OpenRange(%+v) = %v, want ErrNotHeld", bad, err)
		}
	}
	outside := req
	outside.Off, outside.N = int64(len(big))-1, 2
	if _, err := c.OpenRange(ctx, outside, 0); !errors.Is(err, peer.ErrOutOfRange) {
		t.Errorf("range past the end: err = %v, want ErrOutOfRange", err)
	}
	close(gate.open)
	rc, err = c.OpenRange(ctx, late, 20*time.Second)
	if err != nil {
		t.Fatalf("part after release of the gate: %v", err)
	}
	got, _ = io.ReadAll(rc)
	_ = rc.Close()
	if !bytes.Equal(got, big[late.Off:late.Off+late.N]) {
		t.Fatal("the late part served other bytes than the published ones")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Installed: served from the store, whole files.
	rc, err = c.OpenRange(ctx, peer.RangeRequest{Channel: "ch", Version: "v1", Dataset: "d", Path: "small/03", N: 10}, 0)
	if err != nil {
		t.Fatalf("installed release: %v", err)
	}
	got, _ = io.ReadAll(rc)
	_ = rc.Close()
	if !bytes.Equal(got, want["d/small/03"][:10]) {
		t.Fatal("an installed file served other bytes than the published ones")
	}
	if _, err := c.OpenRange(ctx, peer.RangeRequest{Channel: "ch", Version: "v1", Dataset: "d", Path: "small", N: 1}, 0); !errors.Is(err, peer.ErrNotHeld) {
		t.Errorf("a directory of an installed release: err = %v, want ErrNotHeld", err)
	}
}

// TestPeerBytesNeedTheReadersCredentials: bytes a peer sent reach no
// volume, and not the node's own credentials either, unless those
// credentials can read the release at the origin: the access proof runs
// for peer bytes as for a volume's download.
func TestPeerBytesNeedTheReadersCredentials(t *testing.T) {
	e := newAccessEnv(t) // the node's credentials read public/ only; alice private/ too; bob nothing
	e.put(t, "private/v2/a.bin", bytes.NewReader(content("p2a", 3<<20+5)), types.ChecksumAlgorithmCrc64nvme)
	e.put(t, "private/v2/b.bin", bytes.NewReader(content("p2b", 1000)), types.ChecksumAlgorithmCrc64nvme)
	nodeAK, nodeSK := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	t.Setenv("AWS_ACCESS_KEY_ID", e.m.AccessKey) // the publisher lists with root's
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.m.SecretKey)
	rel := e.publish(t, "private", "v2", 2, map[string]string{"idx": "private/v2/"})
	t.Setenv("AWS_ACCESS_KEY_ID", nodeAK)
	t.Setenv("AWS_SECRET_ACCESS_KEY", nodeSK)

	// A holder whose node credentials read everything (root).
	root, err := source.NewCredentials(e.m.AccessKey, e.m.SecretKey, "")
	if err != nil {
		t.Fatal(err)
	}
	holder := e.newPeerCache(t, nil, source.NewReaderMux(source.FetchOptions{Endpoint: e.proxy.URL, Credentials: root}), nil)
	if err := ensure(t, holder, rel); err != nil {
		t.Fatal(err)
	}
	peers := &directPeers{stores: map[string]*cache.Cache{"a": holder}, sent: map[string]int64{},
		plan: peer.NewPlan("b", release.PeerSet{Channel: "private", Version: "v2",
			Holders: []release.Peer{{Node: "a", Address: "10.0.0.1:7470"}}})}
	node := e.newPeerCache(t, peers, source.NewReaderMux(source.FetchOptions{Endpoint: e.proxy.URL}), nil)
	ctx := t.Context()

	// The node's own download takes every byte from the peer.
	wantDenied(t, node.Ensure(ctx, rel), "the node, whose credentials read public/ only")
	if peers.sent["a"] == 0 {
		t.Fatal("the holder sent nothing: the release did not come from the peer, and the test proves nothing")
	}
	if node.Authorized("private", "v2", nil) {
		t.Error("the node's credentials count as authorized for peer bytes they cannot read")
	}
	wantDenied(t, node.EnsureFor(ctx, rel, e.bob), "bob, whose credentials read nothing")
	if err := node.EnsureFor(ctx, rel, e.alice); err != nil {
		t.Fatalf("alice, who reads private/: %v", err)
	}
}

// TestLiarCaughtEarly: a file a peer sent is verified as soon as its last
// part is journaled, so a lying peer is avoided after its first files, not
// after the whole release: the honest peer sends the rest.
func TestLiarCaughtEarly(t *testing.T) {
	e := newS3Env(t)
	want := map[string][]byte{}
	const files = 200
	for i := range files {
		body := content(fmt.Sprint("early", i), 4096)
		want[fmt.Sprintf("d/f%03d", i)] = body
		e.put(t, fmt.Sprintf("early/f%03d", i), bytes.NewReader(body), types.ChecksumAlgorithmCrc64nvme)
	}
	rel := e.publish(t, "ch", "v1", 1, map[string]string{"d": "early/"})
	holder := e.newPeerCache(t, nil, nil, nil)
	if err := ensure(t, holder, rel); err != nil {
		t.Fatal(err)
	}
	peers := &directPeers{stores: map[string]*cache.Cache{"liar": holder, "honest": holder},
		lie: map[string]bool{"liar": true}, sent: map[string]int64{},
		plan: peer.NewPlan("b", release.PeerSet{Channel: "ch", Version: "v1",
			Holders: []release.Peer{{Node: "liar", Address: "10.0.0.9:7470"}, {Node: "honest", Address: "10.0.0.8:7470"}}})}
	node := e.newPeerCache(t, peers, nil, nil)
	if err := ensure(t, node, rel); err != nil {
		t.Fatal(err)
	}
	checkStored(t, node, rel, want)
	lied := peers.sent["liar"] / 4096
	t.Logf("the liar sent %d of %d files before it was avoided", lied, files)
	// Holders alternate by part: caught only at the end, the liar sends
	// every other file (100; 36 when caught early, on a quiet machine).
	if lied > files*3/8 {
		t.Errorf("the liar sent %d of %d files: it was not avoided once its first file failed", lied, files)
	}
}
