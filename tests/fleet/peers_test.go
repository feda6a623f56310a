//go:build linux

package fleet_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/fleet"
	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

// peersOn turns peer distribution on (uploads capped at uploadRate; ""
// keeps the default) and serves each node's metrics on its address. The
// floor under which a peer's transfer is dropped is lowered from 1 MiB/s:
// on two cores shared with other test packages, a healthy peer's stream
// can dip under it, and each such part then comes from the origin, which
// the origin-traffic checks would count against the design.
func peersOn(uploadRate string) func(*fleet.Node) []string {
	return func(n *fleet.Node) []string {
		args := append(fleet.PeerArgs(uploadRate)(n), "--peer-min-rate=128Ki")
		return append(args, fleet.MetricsArgs(n)...)
	}
}

// peerTotals adds up what the nodes reported of a release: bytes from
// peers, from the origin, and served to peers.
func peerTotals(t *testing.T, f *fleet.Fleet, channel, version string) (fromPeers, fromOrigin, served int64) {
	t.Helper()
	reports := f.WaitReady(t, time.Minute, channel, version)
	for _, n := range f.Nodes {
		p, _ := fleet.Progress(reports, n.Name, channel, version)
		fromPeers += p.BytesFromPeers
		fromOrigin += p.BytesFromOrigin
		served += p.BytesServed
	}
	return fromPeers, fromOrigin, served
}

// fallbacks sums hydra_peer_fallbacks_total over the nodes, by reason.
func fallbacks(t *testing.T, f *fleet.Fleet) string {
	t.Helper()
	var out []string
	for _, reason := range []string{"not-held", "not-yet", "busy", "refused", "slow", "bad-answer", "unreachable"} {
		var sum float64
		for _, n := range f.Nodes {
			v, err := n.Metric("hydra_peer_fallbacks_total", map[string]string{"reason": reason})
			if err != nil {
				t.Fatal(err)
			}
			sum += v
		}
		out = append(out, fmt.Sprintf("%s %v", reason, sum))
	}
	return strings.Join(out, ", ")
}

// TestPeersOn: six nodes staging a ~300 MB release of mixed files at once
// take it from each other: every node's store is the release byte for
// byte, and the origin — counted at the proxy in front of MinIO, not by
// Hydra — served at most 1.3 copies.
func TestPeersOn(t *testing.T) {
	const nodes = 6
	f := startFleet(t, nodes, 32<<20, peersOn(""))
	r := fleet.MixedRelease(3, 300<<20)
	served := rollOut(t, f, "mixed", "v1", r)
	if limit := r.Bytes * 13 / 10; served > limit {
		t.Errorf("the origin served %d bytes (%.2f copies), want at most %d (1.3 copies)", served, float64(served)/float64(r.Bytes), limit)
	}
	fromPeers, fromOrigin, up := peerTotals(t, f, "mixed", "v1")
	t.Logf("nodes report %d bytes from peers, %d from the origin, %d served; parts not taken from a named peer: %s",
		fromPeers, fromOrigin, up, fallbacks(t, f))
	if fromPeers == 0 || up == 0 {
		t.Errorf("nodes report %d bytes from peers and %d served: the split is not reported", fromPeers, up)
	}
}

// liar serves every range it is asked for with wrong bytes of the right
// length, from a node's namespace, and records who asked for what.
type liar struct {
	mu   sync.Mutex
	asks map[string]int // "node path range" → requests
}

func (l *liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	first, last, ok := parseRange(r.Header.Get("Range"))
	if !ok {
		http.Error(w, "Range", http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.asks[r.Header.Get(peer.HeaderNode)+" "+r.URL.Path+" "+r.Header.Get("Range")]++
	l.mu.Unlock()
	n := last - first + 1
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", first, last))
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusPartialContent)
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = 0x5a
	}
	for n > 0 {
		k, err := w.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			return
		}
		n -= int64(k)
	}
}

func parseRange(h string) (first, last int64, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(h, "bytes="), "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	return first, last, err1 == nil && err2 == nil && last >= first
}

// TestLyingPeer: a "node" that reports the release installed and answers
// every range with wrong bytes is named as a holder to the others. Every
// real node still installs exactly the published bytes, counts the liar
// in hydra_peer_verify_failures_total, and never asks it for the same
// bytes twice: after verification caught it, the files come from the
// origin.
func TestLyingPeer(t *testing.T) {
	const nodes = 4
	f := startFleet(t, nodes, 32<<20, peersOn(""))
	bad := f.Nodes[nodes-1]
	bad.Kill() // its namespace and address stay; the liar takes its place
	l := &liar{asks: map[string]int{}}
	ln, err := bad.Listen("tcp", net.JoinHostPort(bad.IP.String(), strconv.Itoa(fleet.PeerPort)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: l, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	r := fleet.MixedRelease(4, 64<<20)
	f.Publish(t, "lies", "v1", r)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort(bad.IP.String(), strconv.Itoa(fleet.PeerPort))
	err = f.NodeClient(t, bad.Index).ReportStatus(ctx, release.NodeStatus{Node: bad.Name,
		Releases: []release.Progress{{Channel: "lies", Version: "v1", State: release.StateReady, BytesDone: r.Bytes, BytesTotal: r.Bytes}},
		Views:    []release.View{}, Peer: &release.PeerInfo{Address: addr}})
	if err != nil {
		t.Fatal(err)
	}
	honest := f.Nodes[:nodes-1]
	f.StageAll(t, stageLimit, "lies", honest...)
	f.WaitReady(t, time.Minute, "lies", "v1", honest...)
	f.VerifyStores(t, "lies", "v1", r, honest...)

	l.mu.Lock()
	asked := len(l.asks)
	for key, n := range l.asks {
		if n > 1 {
			t.Errorf("the liar was asked %d times for %s: it should have been avoided once caught", n, key)
		}
	}
	l.mu.Unlock()
	if asked == 0 {
		t.Fatal("no node asked the liar for anything: the manager did not name it, and the test proves nothing")
	}
	for _, n := range honest {
		caught, err := n.Metric("hydra_peer_verify_failures_total", nil)
		if err != nil {
			t.Fatal(err)
		}
		if caught < 1 {
			t.Errorf("%s: hydra_peer_verify_failures_total = %v, want at least 1", n.Name, caught)
		}
	}
}

// TestServingNodeKilled: a node the others are fetching from is killed
// (SIGKILL) mid-transfer; the rest finish with exact bytes, and the killed
// node holds no partial release (what it has in store/ is whole).
func TestServingNodeKilled(t *testing.T) {
	const nodes = 5
	f := startFleet(t, nodes, 24<<20, peersOn(""))
	r := fleet.MixedRelease(5, 200<<20)
	f.Publish(t, "kill", "v1", r)
	victim, rest := f.Nodes[0], f.Nodes[1:]
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), stageLimit)
		defer cancel()
		_ = victim.Stage(ctx, "kill", nil) // fails when the node is killed
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.StageAll(t, stageLimit, "kill", rest...)
	}()
	// Killed once it has uploaded a good share to the others.
	deadline := time.Now().Add(stageLimit)
	for {
		up, err := victim.Uploaded()
		if err != nil {
			t.Fatal(err)
		}
		if up > 20<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s uploaded only %d bytes: the others do not fetch from it", victim.Name, up)
		}
		time.Sleep(50 * time.Millisecond)
	}
	victim.Kill()
	<-done
	f.WaitReady(t, time.Minute, "kill", "v1", rest...)
	f.VerifyStores(t, "kill", "v1", r, rest...)
	// The victim's store: the release whole, or not there at all.
	if dir := victim.StoreDir("kill", "v1"); dirExists(dir) {
		f.VerifyStores(t, "kill", "v1", r, victim)
	}
}

// TestUploadCap: a node that holds a release serves the others at most at
// its --peer-upload-rate, measured on its veth over every 2-second window
// (the tbf burst, the limiter's burst and frame headers allowed).
func TestUploadCap(t *testing.T) {
	const (
		nodes = 3
		rate  = 4 << 20
	)
	f := startFleet(t, nodes, 32<<20, peersOn(strconv.Itoa(rate)))
	r := fleet.MixedRelease(6, 96<<20)
	f.Publish(t, "capped", "v1", r)
	holder := f.Nodes[0]
	f.StageAll(t, stageLimit, "capped", holder)
	f.WaitReady(t, time.Minute, "capped", "v1", holder)
	sampler := holder.SampleUpload(100 * time.Millisecond)
	f.StageAll(t, stageLimit, "capped", f.Nodes[1:]...)
	samples, err := sampler.Stop()
	if err != nil {
		t.Fatal(err)
	}
	f.VerifyStores(t, "capped", "v1", r)
	w, ok := fleet.MaxWindow(samples, 2*time.Second, fleet.RX)
	if !ok {
		t.Fatal("the transfer took less than one 2-second window: nothing to measure")
	}
	total := samples[len(samples)-1].RX - samples[0].RX
	// 5 % for TCP/IP and Ethernet headers, which the cap does not count.
	limit := (int64(float64(rate)*w.Duration.Seconds()) + peer.UploadBurst + 4*64<<10) * 105 / 100
	t.Logf("the holder uploaded %d bytes in all; at most %d in %v (limit %d)", total, w.Bytes, w.Duration, limit)
	if total < 8<<20 {
		t.Fatalf("the holder uploaded only %d bytes: the others did not fetch from it, so the cap was not exercised", total)
	}
	if w.Bytes > limit {
		t.Errorf("the holder uploaded %d bytes in %v, over its cap's %d", w.Bytes, w.Duration, limit)
	}
}

// TestPeerBadInput: requests another node may send but should not — a
// path out of the store, a release the node does not hold, no token, a
// wrong one, another node's — get a clear 4xx and no data.
func TestPeerBadInput(t *testing.T) {
	f := startFleet(t, 2, 32<<20, peersOn(""))
	r := fleet.MixedRelease(7, 8<<20)
	f.Publish(t, "bad", "v1", r)
	f.StageAll(t, stageLimit, "bad", f.Nodes[0])
	asker := f.Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := f.NodeClient(t, asker.Index).Desired(ctx, asker.Name, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := hex.DecodeString(d.PeerSecret)
	if err != nil || len(secret) == 0 {
		t.Fatalf("node-1's desired state has no usable peer secret (%q): %v", d.PeerSecret, err)
	}
	good := peer.Token(secret, asker.Name)
	file := r.Files[0].Name
	base := f.Nodes[0].PeerURL() + peer.PathPrefix
	for _, tc := range []struct {
		name, path, node, token string
		want                    int
	}{
		{"held, for reference", "bad/v1/" + fleet.Dataset + "/" + file, asker.Name, good, http.StatusPartialContent},
		{"out of the store", "bad/v1/" + fleet.Dataset + "/../../../etc/passwd", asker.Name, good, anyClientError},
		{"encoded out of the store", "bad/v1/" + fleet.Dataset + "/%2e%2e/%2e%2e/etc/passwd", asker.Name, good, anyClientError},
		{"a release it does not hold", "bad/v9/" + fleet.Dataset + "/" + file, asker.Name, good, http.StatusNotFound},
		{"a channel it does not hold", "nope/v1/" + fleet.Dataset + "/" + file, asker.Name, good, http.StatusNotFound},
		{"no token", "bad/v1/" + fleet.Dataset + "/" + file, asker.Name, "", http.StatusUnauthorized},
		{"a wrong token", "bad/v1/" + fleet.Dataset + "/" + file, asker.Name, strings.Repeat("0", 64), http.StatusUnauthorized},
		{"another node's token", "bad/v1/" + fleet.Dataset + "/" + file, "node-0", good, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Range", "bytes=0-99")
			req.Header.Set(peer.HeaderNode, tc.node)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := asker.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if got := resp.StatusCode; got != tc.want && (tc.want != anyClientError || got < 400 || got > 499) {
				t.Fatalf("status %d (%q), want %d (0: any 4xx)", got, body, tc.want)
			}
			if tc.want != http.StatusPartialContent && (len(body) > 200 || strings.Count(string(body), "\n") > 1) {
				t.Errorf("a refusal sent %d bytes (%q): want one short line", len(body), body)
			}
		})
	}
}

// anyClientError accepts any 4xx (how a path with dot segments is refused
// depends on where in the server it is caught first).
const anyClientError = 0

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}
