//go:build linux

package fleet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// blobServer serves GET /blob?n=BYTES (zeros) and discards POST /sink on
// the bridge's address, standing in for the origin.
func blobServer(t *testing.T, n *Network) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(n.HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 64<<10)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, _ = io.Copy(io.Discard, r.Body)
			return
		}
		size, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		for size > 0 {
			k, err := w.Write(zeros[:min(size, int64(len(zeros)))])
			if err != nil {
				return
			}
			size -= int64(k)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}

func download(ns *Netns, url string, size int64) error {
	resp, err := ns.HTTPClient().Get(fmt.Sprintf("%s/blob?n=%d", url, size))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err == nil && got != size {
		err = fmt.Errorf("%s got %d bytes, want %d", ns.Name, got, size)
	}
	return err
}

func upload(ns *Netns, url string, size int64) error {
	resp, err := ns.HTTPClient().Post(url+"/sink", "application/octet-stream", io.LimitReader(zeroReader{}, size))
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestNetworkShapes checks each shaped direction by measurement: over every
// interval of at least 2 s the counter moves at most rate×interval + one
// burst. Each transfer is larger than what 2 s of its rate and a burst
// allow, so an unshaped link fails the check.
func TestNetworkShapes(t *testing.T) {
	const nodeRate, originRate = 8 << 20, 12 << 20
	const span = 2 * time.Second
	n := StartNetwork(t, NetOptions{Nodes: 3, NodeRate: nodeRate, OriginRate: originRate})
	url := blobServer(t, n)
	size := 3 * int64(nodeRate)

	cases := []struct {
		name   string
		rate   int64
		sample func() *Sampler
		value  func(Counters) int64
		run    func() error
	}{
		{"node download", nodeRate, func() *Sampler { return n.Nodes[0].SampleLink(100 * time.Millisecond) }, TX,
			func() error { return download(n.Nodes[0], url, size) }},
		{"node upload", nodeRate, func() *Sampler { return n.Nodes[1].SampleLink(100 * time.Millisecond) }, RX,
			func() error { return upload(n.Nodes[1], url, size) }},
		{"origin to all nodes", originRate, func() *Sampler { return n.SampleBridge(100 * time.Millisecond) }, TX,
			func() error {
				var wg sync.WaitGroup
				errs := make([]error, len(n.Nodes))
				for i, ns := range n.Nodes {
					wg.Go(func() { errs[i] = download(ns, url, size) })
				}
				wg.Wait()
				return errors.Join(errs...)
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.sample()
			err := tc.run()
			samples, serr := s.Stop()
			if err != nil || serr != nil {
				t.Fatalf("transfer: %v; sampling: %v", err, serr)
			}
			w, ok := MaxWindow(samples, span, tc.value)
			if !ok {
				t.Fatalf("%d bytes moved in less than %v, more than %d B/s and a burst allow: the link is not shaped", size, span, tc.rate)
			}
			if limit := Limit(tc.rate, w.Duration); w.Bytes > limit {
				t.Errorf("%d bytes over %v, more than rate %d B/s allows with a burst of %d (%d)", w.Bytes, w.Duration, tc.rate, Burst(tc.rate), limit)
			}
			t.Logf("busiest %v: %d bytes (%.1f MB/s; cap %.1f MB/s)", w.Duration, w.Bytes, float64(w.Bytes)/w.Duration.Seconds()/1e6, float64(tc.rate)/1e6)
		})
	}
}

// TestNetworkIsolated: a node reaches the bridge and its neighbours but has
// no route anywhere else, so the kernel refuses at once without sending.
func TestNetworkIsolated(t *testing.T) {
	n := StartNetwork(t, NetOptions{Nodes: 2})
	l, err := n.Nodes[1].Listen("tcp", net.JoinHostPort(n.Nodes[1].IP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	ctx := t.Context()
	c, err := n.Nodes[0].DialContext(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("node 0 to node 1: %v", err)
	}
	_ = c.Close()
	// 203.0.113.0/24 is TEST-NET-3: no route in the namespace, so connect
	// fails with ENETUNREACH before any packet is made.
	_, err = n.Nodes[0].DialContext(ctx, "tcp", "203.0.113.1:80")
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("dial outside the fleet: %v, want network unreachable", err)
	}
}

// recorder is a testing.TB that keeps Errorf's messages, to check that
// teardown reports a leak.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestTeardown: everything goes, and a process the harness did not start
// is killed and named.
func TestTeardown(t *testing.T) {
	RequireHost(t) // here too: a skipped subtest would leave n nil
	var n *Network
	t.Run("clean", func(t *testing.T) {
		n = StartNetwork(t, NetOptions{Nodes: 2, NodeRate: 1 << 20, OriginRate: 1 << 20})
		p := n.Nodes[0].Command(t, "sleeper", nil, "sleep", "600")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	})
	if left := n.leftovers(); len(left) > 0 {
		t.Errorf("left after a clean run: %v", left)
	}
	t.Run("leak", func(t *testing.T) {
		n = StartNetwork(t, NetOptions{Nodes: 1})
		stray := exec.Command("ip", "netns", "exec", n.Nodes[0].Name, "sleep", "600")
		if err := stray.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = stray.Wait() }()
		for deadline := time.Now().Add(10 * time.Second); len(nsPids(n.Nodes[0].Name)) == 0; {
			if time.Now().After(deadline) {
				t.Fatal("the stray process never entered the namespace")
			}
			time.Sleep(10 * time.Millisecond)
		}
		rec := &recorder{TB: t}
		n.teardown(rec)
		if got := strings.Join(rec.errs, "\n"); !strings.Contains(got, fmt.Sprintf("processes [%d] in namespace %s", stray.Process.Pid, n.Nodes[0].Name)) {
			t.Errorf("teardown reported %q, want the stray process named", got)
		}
	})
	if left := n.leftovers(); len(left) > 0 {
		t.Errorf("left after a leak: %v", left)
	}
}

// TestNodeToNodeSkipsOriginCap: traffic between two nodes is bridged from
// veth to veth, so it is shaped by the two nodes' links and never by the
// origin's cap on the bridge device, which sees almost none of it.
func TestNodeToNodeSkipsOriginCap(t *testing.T) {
	const nodeRate, originRate = 8 << 20, 1 << 20
	n := StartNetwork(t, NetOptions{Nodes: 2, NodeRate: nodeRate, OriginRate: originRate})
	l, err := n.Nodes[0].Listen("tcp", net.JoinHostPort(n.Nodes[0].IP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	size := 3 * int64(nodeRate)
	bridge, link := n.SampleBridge(100*time.Millisecond), n.Nodes[0].SampleLink(100*time.Millisecond)
	err = upload(n.Nodes[1], "http://"+l.Addr().String(), size)
	bs, berr := bridge.Stop()
	ls, lerr := link.Stop()
	if err := errors.Join(err, berr, lerr); err != nil {
		t.Fatal(err)
	}
	if sent := bs[len(bs)-1].TX - bs[0].TX; sent > size/10 {
		t.Errorf("the bridge device sent %d bytes of a %d-byte transfer between nodes: it should only bridge it", sent, size)
	}
	w, ok := MaxWindow(ls, 2*time.Second, TX)
	if !ok {
		t.Fatalf("%d bytes moved between nodes in less than 2 s, more than %d B/s and a burst allow: the links are not shaped", size, nodeRate)
	}
	if limit := Limit(nodeRate, w.Duration); w.Bytes > limit {
		t.Errorf("%s received %d bytes over %v, more than its link allows (%d)", n.Nodes[0].Name, w.Bytes, w.Duration, limit)
	}
}
