package testenv

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults are the failures a FaultProxy injects, each as a probability per
// request. Only ranged GETs (requests with a Range header, what downloads
// send) get faults, so listings and uploads through the proxy still work.
// At most one fault hits a request; the rates are tried in field order.
type Faults struct {
	// ErrorRate answers without asking the target: 500 InternalError or
	// 503 SlowDown, with an S3 XML error document.
	ErrorRate float64
	// ResetRate sends the response headers and part of the body, then
	// resets the connection (TCP RST).
	ResetRate float64
	// TruncateRate sends the headers and part of the body, then closes the
	// connection cleanly: a short body.
	TruncateRate float64
	// SlowRate sends the body chunk by chunk with SlowDelay before each.
	SlowRate  float64
	SlowDelay time.Duration
	// Seed makes the sequence of decisions repeatable (the order in which
	// concurrent requests draw from it is not).
	Seed int64
}

// FaultProxy is an HTTP reverse proxy on 127.0.0.1 (or another local
// address, StartFaultProxyOn) that injects Faults between a client and a
// server (MinIO), closed when the test ends.
type FaultProxy struct {
	// URL is the proxy's address, "http://127.0.0.1:PORT"; clients use it
	// as their endpoint.
	URL string

	proxy  *httputil.ReverseProxy
	server *http.Server

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	ranges []RangeRequest

	requests, bytesServed, injected atomic.Int64
}

// StartFaultProxy starts a proxy to target ("http://127.0.0.1:PORT") with
// no faults set.
func StartFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	return StartFaultProxyOn(t, "127.0.0.1", target)
}

// StartFaultProxyOn is StartFaultProxy listening on a free port of another
// local address, host: the fleet harness puts it on its bridge, where the
// nodes' network namespaces reach it.
func StartFaultProxyOn(t testing.TB, host, target string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("testenv: fault proxy target %q: %v", target, err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("testenv: fault proxy: listen on %s: %v", host, err)
	}
	transport := &http.Transport{
		Proxy:               nil,  // straight to the target, whatever HTTP_PROXY says
		DisableCompression:  true, // pass bytes and Accept-Encoding through untouched
		MaxIdleConnsPerHost: 64,
	}
	p := &FaultProxy{URL: "http://" + l.Addr().String(), rng: rand.New(rand.NewPCG(0, 0))} //nolint:gosec // G404: test faults
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// S3 signatures cover the Host header: the target must see
			// the host the client signed, the proxy's.
			r.Out.Host = r.In.Host
		},
		Transport: transport,
		// An injected reset or truncation aborts the copy; ReverseProxy
		// would log each one.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(l) }() // returns ErrServerClosed at Close
	t.Cleanup(func() {
		_ = p.server.Close() // closes every connection, hijacked ones aside
		transport.CloseIdleConnections()
	})
	return p
}

// SetFaults replaces the faults and restarts the random sequence from
// f.Seed. Requests in flight keep the fault they drew.
func (p *FaultProxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0)) //nolint:gosec // G404: test faults
}

// Requests is the number of requests the proxy received.
func (p *FaultProxy) Requests() int64 { return p.requests.Load() }

// BytesServed is the number of body bytes of successful (2xx) responses
// that the proxy sent to its clients: object data (and listings), not error
// documents, so a test can tell how much data a client really downloaded.
func (p *FaultProxy) BytesServed() int64 { return p.bytesServed.Load() }

// Injected is the number of faults injected so far.
func (p *FaultProxy) Injected() int64 { return p.injected.Load() }

type faultKind int

const (
	faultNone faultKind = iota
	faultError
	faultReset
	faultTruncate
	faultSlow
)

// plan is the fault one request drew: its kind, the fraction of the body
// to send before a reset or truncation, and which error to answer with.
type plan struct {
	kind  faultKind
	cut   float64
	delay time.Duration
	code  int
}

// draw decides the fault of one request.
func (p *FaultProxy) draw(r *http.Request) plan {
	if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
		return plan{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	u, cut, pick := p.rng.Float64(), p.rng.Float64(), p.rng.IntN(2)
	pl := plan{cut: cut, delay: f.SlowDelay, code: []int{http.StatusInternalServerError, http.StatusServiceUnavailable}[pick]}
	for _, c := range []struct {
		rate float64
		kind faultKind
	}{{f.ErrorRate, faultError}, {f.ResetRate, faultReset}, {f.TruncateRate, faultTruncate}, {f.SlowRate, faultSlow}} {
		if u < c.rate {
			pl.kind = c.kind
			return pl
		}
		u -= c.rate
	}
	return plan{}
}

// RangeRequest is one ranged GET the proxy received.
type RangeRequest struct {
	// Path is the request path, "/bucket/key" with path-style addressing.
	Path string
	// Start and End are the first and last byte asked for.
	Start, End int64
	// AccessKey is the access key ID the request was signed with (from
	// its SigV4 Authorization header), empty when unsigned.
	AccessKey string
}

// Ranges returns every ranged GET received so far, in arrival order.
func (p *FaultProxy) Ranges() []RangeRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ranges)
}

func (p *FaultProxy) recordRange(r *http.Request) {
	var rr RangeRequest
	if r.Method != http.MethodGet {
		return
	}
	if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-%d", &rr.Start, &rr.End); err != nil {
		return
	}
	rr.Path = r.URL.Path
	rr.AccessKey = signingKey(r.Header.Get("Authorization"))
	p.mu.Lock()
	p.ranges = append(p.ranges, rr)
	p.mu.Unlock()
}

// signingKey returns the access key ID of a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/date/region/s3/aws4_request, ...".
func signingKey(auth string) string {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// ServeHTTP implements http.Handler.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.recordRange(r)
	pl := p.draw(r)
	if pl.kind == faultError {
		p.injected.Add(1)
		p.writeS3Error(w, r, pl.code)
		return
	}
	p.proxy.ServeHTTP(&faultWriter{ResponseWriter: w, proxy: p, plan: pl, req: r}, r)
}

// s3Error is the error document S3 sends with a failure.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	Resource  string
	RequestID string `xml:"RequestId"`
}

// writeS3Error answers as S3 does when it fails or throttles.
func (p *FaultProxy) writeS3Error(w http.ResponseWriter, r *http.Request, status int) {
	doc := s3Error{Code: "InternalError", Message: "We encountered an internal error. Please try again.",
		Resource: r.URL.Path, RequestID: "faultproxy"}
	if status == http.StatusServiceUnavailable {
		doc.Code, doc.Message = "SlowDown", "Please reduce your request rate."
	}
	body, err := xml.Marshal(doc)
	if err != nil { // a struct of strings always marshals
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append([]byte(xml.Header), body...)
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client may be gone
}

// errInjected stops ReverseProxy's copy after a reset or truncation.
var errInjected = errors.New("testenv: fault injected")

// faultWriter sits between ReverseProxy and the client's connection: it
// counts the body bytes that reach the client and applies a request's body
// fault. Body faults apply to successful responses with a known length.
type faultWriter struct {
	http.ResponseWriter
	proxy *FaultProxy
	plan  plan
	req   *http.Request
	cutAt int64 // body bytes to send before a reset or truncation; -1 for none
	sent  int64
	ok    bool // a 2xx response, whose body bytes count as served
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes, our
// hijack) reach the server's writer.
func (fw *faultWriter) Unwrap() http.ResponseWriter { return fw.ResponseWriter }

func (fw *faultWriter) WriteHeader(status int) {
	if status < 200 { // informational (100 Continue): the real answer follows
		fw.ResponseWriter.WriteHeader(status)
		return
	}
	fw.cutAt = -1
	fw.ok = status/100 == 2
	size, err := strconv.ParseInt(fw.Header().Get("Content-Length"), 10, 64)
	if status/100 != 2 || err != nil || size <= 0 {
		fw.plan.kind = faultNone // an error answer or no body: pass it on
	} else if fw.plan.kind == faultReset || fw.plan.kind == faultTruncate {
		fw.cutAt = int64(fw.plan.cut * float64(size)) // in [0, size)
	}
	if fw.plan.kind != faultNone {
		fw.proxy.injected.Add(1)
	}
	fw.ResponseWriter.WriteHeader(status)
}

func (fw *faultWriter) Write(b []byte) (int, error) {
	switch fw.plan.kind {
	case faultReset, faultTruncate:
		if fw.sent+int64(len(b)) >= fw.cutAt {
			n, _ := fw.write(b[:fw.cutAt-fw.sent])
			return n, fw.breakConnection(fw.plan.kind == faultReset)
		}
	case faultSlow:
		select {
		case <-time.After(fw.plan.delay):
		case <-fw.req.Context().Done(): // the client went away
			return 0, fw.req.Context().Err()
		}
		n, err := fw.write(b)
		if err == nil {
			err = http.NewResponseController(fw.ResponseWriter).Flush()
		}
		return n, err
	}
	return fw.write(b)
}

// write sends b to the client and counts what went.
func (fw *faultWriter) write(b []byte) (int, error) {
	n, err := fw.ResponseWriter.Write(b)
	fw.sent += int64(n)
	if fw.ok {
		fw.proxy.bytesServed.Add(int64(n))
	}
	return n, err
}

// breakConnection flushes what was written, takes the connection from the
// server and closes it: with SO_LINGER 0 the kernel sends a RST (a reset);
// otherwise a FIN after the data (a clean close mid-body).
func (fw *faultWriter) breakConnection(reset bool) error {
	rc := http.NewResponseController(fw.ResponseWriter)
	_ = rc.Flush() // the client may be gone already; the close follows anyway
	conn, _, err := rc.Hijack()
	if err != nil {
		return fmt.Errorf("testenv: fault proxy: hijack: %w", err)
	}
	if tcp, ok := conn.(*net.TCPConn); ok && reset {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
	return errInjected
}
