package peer

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Store holds the releases served; required.
	Store Store
	// Secret returns the current peer secret (it comes with the desired
	// state and may change); nil, or an empty secret, refuses every
	// request with 401.
	Secret func() []byte
	// Rate caps the bytes per second sent to all peers together; Streams
	// the requests sent at once. Both must be positive.
	Rate    int64
	Streams int
	// Registerer takes the server's metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxWait bounds the X-Hydra-Wait a request may ask for; 0 is MaxWait.
	MaxWait time.Duration
	// WriteStall is how long one write to a caller may take before the
	// transfer is dropped and its stream freed; 0 is DefaultWriteStall.
	WriteStall time.Duration
}

// DefaultWriteStall bounds one write to a caller that stopped reading.
const DefaultWriteStall = 30 * time.Second

// Server answers peer requests (the protocol in this package's doc): it
// checks the token and every part of the request, opens the range in
// the Store, and sends it within the upload cap.
type Server struct {
	opts    ServerOptions
	limit   *uploadLimit
	metrics serverMetrics

	total  atomic.Int64
	mu     sync.Mutex
	served map[releaseKey]int64
}

type releaseKey struct{ channel, version string }

// NewServer checks opts and returns a server; it registers its metrics on
// opts.Registerer.
func NewServer(opts ServerOptions) (*Server, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("peer: server: no Store")
	case opts.Rate <= 0:
		return nil, fmt.Errorf("peer: server: upload rate %d bytes/s: must be positive", opts.Rate)
	case opts.Streams <= 0:
		return nil, fmt.Errorf("peer: server: upload streams %d: must be positive", opts.Streams)
	case opts.MaxWait < 0:
		return nil, fmt.Errorf("peer: server: max wait %s: must not be negative", opts.MaxWait)
	case opts.WriteStall < 0:
		return nil, fmt.Errorf("peer: server: write stall %s: must not be negative", opts.WriteStall)
	}
	if opts.MaxWait == 0 {
		opts.MaxWait = MaxWait
	}
	if opts.WriteStall == 0 {
		opts.WriteStall = DefaultWriteStall
	}
	s := &Server{
		opts:    opts,
		limit:   newUploadLimit(opts.Rate, opts.Streams),
		metrics: newServerMetrics(),
		served:  map[releaseKey]int64{},
	}
	if err := s.metrics.register(opts.Registerer); err != nil {
		return nil, fmt.Errorf("peer: server: registering metrics: %w", err)
	}
	return s, nil
}

// HTTPServer returns an http.Server that serves s on addr with the limits
// a port open to other nodes needs: request headers within 10 s and at
// most 16 KiB, idle connections closed after 2 minutes. It has no read or
// write timeout for the whole request: a long range at a low rate is
// legitimate, and WriteStall ends a stuck one.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// ServeHTTP answers one peer request:
//
//  1. refuse anything but GET (405), then a missing or wrong token (401);
//  2. read and check the path, Range and headers (400);
//  3. open the range in the Store, which may wait for journaled bytes;
//  4. take an upload stream, or answer 429: a request waiting in (3)
//     holds none, so waiting callers cannot starve the ones that can be
//     served; a request that may wait (X-Hydra-Wait) waits for a stream
//     too, within what is left of its wait, one that may not gets 429 at
//     once;
//  5. send the bytes within the upload cap.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// (1)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.refuse(w, refusal(http.StatusMethodNotAllowed, "method %s: peer requests are GET", shown(r.Method)))
		return
	}
	node, herr := s.authorize(r)
	if herr != nil {
		if herr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hydra-peer"`)
		}
		s.refuse(w, herr)
		return
	}
	// (2)
	req, wait, herr := parseRequest(r, s.opts.MaxWait)
	if herr != nil {
		s.refuse(w, herr)
		return
	}
	// (3)
	until := time.Now().Add(wait)
	body, err := s.opts.Store.OpenRange(r.Context(), req, wait)
	if err != nil {
		s.storeFailed(w, r, node, req, err)
		return
	}
	defer body.Close() //nolint:errcheck // read-only
	// (4)
	if !s.limit.acquire(r.Context(), until) {
		w.Header().Set("Retry-After", "1")
		s.refuse(w, refusal(http.StatusTooManyRequests, "upload streams: all %d busy", s.opts.Streams))
		return
	}
	defer s.limit.release()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	// (5)
	s.send(w, r, node, req, body)
}

// authorize checks the token against the requesting node's name (400
// when that is no node name at all).
func (s *Server) authorize(r *http.Request) (string, *httpError) {
	var secret []byte
	if s.opts.Secret != nil {
		secret = s.opts.Secret()
	}
	node := r.Header.Get(HeaderNode)
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case len(secret) == 0:
		return "", refusal(http.StatusUnauthorized, "Authorization: this node has no peer secret yet")
	case node == "":
		return "", refusal(http.StatusUnauthorized, "%s: missing", HeaderNode)
	case release.ValidateNodeName(node) != nil:
		return "", refusal(http.StatusBadRequest, "%s: %v", HeaderNode, release.ValidateNodeName(node))
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		return "", refusal(http.StatusUnauthorized, "Authorization: want Bearer <token>")
	case !CheckToken(secret, node, token):
		return "", refusal(http.StatusUnauthorized, "Authorization: token refused for %s %s", HeaderNode, shown(node))
	}
	return node, nil
}

// storeFailed answers a failed OpenRange. A caller that went away gets
// nothing.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, node string, req RangeRequest, err error) {
	what := fmt.Sprintf("%s/%s %s/%s", req.Channel, req.Version, req.Dataset, req.Path)
	switch {
	case r.Context().Err() != nil:
		klog.V(4).InfoS("peer: caller left while the range was opened", "node", node, "channel", req.Channel, "release", req.Version, "dataset", req.Dataset, "path", req.Path)
	case errors.Is(err, ErrNotHeld):
		s.refuse(w, refusal(http.StatusNotFound, "%s: not held here", what))
	case errors.Is(err, ErrNotYet):
		s.refuse(w, refusal(http.StatusServiceUnavailable, "%s: bytes %d-%d not here yet", what, req.Off, req.Off+req.N-1))
	case errors.Is(err, ErrOutOfRange):
		s.refuse(w, refusal(http.StatusRequestedRangeNotSatisfiable, "Range: bytes %d-%d is outside %s", req.Off, req.Off+req.N-1, what))
	default:
		klog.ErrorS(err, "peer: opening a range failed", "node", node, "channel", req.Channel, "release", req.Version, "dataset", req.Dataset, "path", req.Path, "offset", req.Off, "length", req.N)
		s.refuse(w, refusal(http.StatusInternalServerError, "%s: internal error opening the range", what))
	}
}

// refuse answers an error: its status and one line of text.
func (s *Server) refuse(w http.ResponseWriter, herr *httpError) {
	s.metrics.requests.WithLabelValues(strconv.Itoa(herr.status)).Inc()
	http.Error(w, herr.msg, herr.status)
}

// send answers 206 and streams the range. A failure after the header
// leaves the response short of its Content-Length, which makes net/http
// close the connection: the caller sees a broken transfer, not bytes
// that are wrong.
func (s *Server) send(w http.ResponseWriter, r *http.Request, node string, req RangeRequest, body io.Reader) {
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(req.N, 10))
	// The complete length is not known here (the Store yields the range
	// only); RFC 9110 allows "*" for it.
	h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/*", req.Off, req.Off+req.N-1))
	w.WriteHeader(http.StatusPartialContent)
	s.metrics.requests.WithLabelValues(strconv.Itoa(http.StatusPartialContent)).Inc()
	key := releaseKey{req.Channel, req.Version}
	// net/http lifts the last deadline once the response is flushed, so
	// the connection's next request does not inherit it.
	dw := &deadlineWriter{w: w, rc: http.NewResponseController(w), stall: s.opts.WriteStall}
	_, err := s.limit.send(r.Context(), dw, body, req.N, func(n int64) { s.account(key, n) })
	switch {
	case err == nil:
	case errors.Is(err, errSendWrite), r.Context().Err() != nil:
		klog.V(4).InfoS("peer: caller left during the transfer", "node", node, "channel", req.Channel, "release", req.Version, "dataset", req.Dataset, "path", req.Path, "err", err)
	default:
		klog.ErrorS(err, "peer: reading a range failed", "node", node, "channel", req.Channel, "release", req.Version, "dataset", req.Dataset, "path", req.Path, "offset", req.Off, "length", req.N)
	}
}

// deadlineWriter gives each write stall to finish, so that a caller that
// stops reading (a frozen or cut-off node) frees its stream instead of
// holding it until TCP gives up.
type deadlineWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	stall time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// Without support for deadlines (not a net/http connection) writes
	// simply have none.
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.stall))
	return d.w.Write(p)
}

func (s *Server) account(key releaseKey, n int64) {
	s.total.Add(n)
	s.metrics.served.Add(float64(n))
	s.mu.Lock()
	s.served[key] += n
	s.mu.Unlock()
}

// Served is the bytes of channel/version written to peers since the
// server started or the release was forgotten.
func (s *Server) Served(channel, version string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[releaseKey{channel, version}]
}

// ServedTotal is the bytes written to peers since the server started.
func (s *Server) ServedTotal() int64 { return s.total.Load() }

// Forget drops channel/version's counter (the release left the node). A
// transfer still running starts a new one.
func (s *Server) Forget(channel, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.served, releaseKey{channel, version})
}

// serverMetrics are the server's Prometheus metrics.
type serverMetrics struct {
	served   prometheus.Counter
	requests *prometheus.CounterVec
	streams  prometheus.Gauge
}

// codes are the statuses the server answers, given series from the start.
var codes = []int{
	http.StatusPartialContent, http.StatusBadRequest, http.StatusUnauthorized,
	http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestedRangeNotSatisfiable,
	http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable,
}

func newServerMetrics() serverMetrics {
	m := serverMetrics{
		served: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_peer_served_bytes_total",
			Help: "Bytes of releases sent to other nodes.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_peer_requests_total",
			Help: "Peer requests answered, by HTTP status.",
		}, []string{"code"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_peer_upload_streams",
			Help: "Upload streams in use (ranges being sent to other nodes).",
		}),
	}
	for _, c := range codes {
		m.requests.WithLabelValues(strconv.Itoa(c))
	}
	return m
}

func (m serverMetrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.served, m.requests, m.streams} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
