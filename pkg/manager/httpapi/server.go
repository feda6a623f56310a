// Package httpapi serves the manager's core over HTTP/JSON under /v1, with
// bearer-token auth, /metrics, /healthz and /readyz. It is a thin adapter:
// decoding, auth and status codes here, every decision in package manager.
package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
)

// Body size limits. A publish carries whole manifests (a million files is
// ~100 MiB of JSON), node reports a few hundred views; anything else is small.
const (
	DefaultMaxBody        = 1 << 20
	DefaultMaxPublishBody = 256 << 20
	DefaultMaxReportBody  = 8 << 20
)

// Options configure the HTTP layer.
type Options struct {
	// Tokens authenticates requests; nil disables auth (--insecure-no-auth).
	Tokens *auth.Tokens
	// Registry receives request metrics and is served on /metrics.
	Registry *prometheus.Registry
	// MaxBody, MaxPublishBody and MaxReportBody override the limits above.
	MaxBody, MaxPublishBody, MaxReportBody int64
	// RequireClientCert refuses /v1 requests without a verified client
	// certificate (--tls-client-ca; see TLSConfig).
	RequireClientCert bool
}

// Server is the HTTP handler of the manager.
type Server struct {
	m        *manager.Manager
	opts     Options
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New builds the handler. The registry must be the one the manager's
// metrics were registered with, so /metrics shows both.
func New(m *manager.Manager, opts Options) (*Server, error) {
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.MaxPublishBody <= 0 {
		opts.MaxPublishBody = DefaultMaxPublishBody
	}
	if opts.MaxReportBody <= 0 {
		opts.MaxReportBody = DefaultMaxReportBody
	}
	s := &Server{m: m, opts: opts, mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hydra_manager_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hydra_manager_http_request_duration_seconds", Help: "HTTP request latency by route (long-polls included).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
	}, []string{"route"})
	for _, c := range []prometheus.Collector{s.requests, s.latency} {
		if err := opts.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler, recording metrics per route pattern.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	s.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	klog.V(4).InfoS("http request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) routes() {
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)

	s.handle("GET /v1/channels", auth.Read, nil, s.listChannels)
	s.handle("POST /v1/channels", auth.Publish, nil, s.createChannel)
	s.handle("GET /v1/channels/{channel}", auth.Read, nil, s.getChannel)
	s.handle("DELETE /v1/channels/{channel}", auth.Admin, nil, s.deleteChannel)
	s.handle("GET /v1/channels/{channel}/status", auth.Read, nil, s.channelStatus)
	s.handle("GET /v1/channels/{channel}/releases", auth.Read, nil, s.listReleases)
	s.handle("POST /v1/channels/{channel}/releases", auth.Publish, pathChannel, s.publish)
	s.handle("GET /v1/channels/{channel}/releases/{version}", auth.Read, nil, s.getRelease)
	s.handle("GET /v1/channels/{channel}/releases/{version}/manifest", auth.Read, nil, s.getManifest)
	s.handle("PUT /v1/channels/{channel}/head", auth.Publish, pathChannel, s.setHead)
	s.handle("POST /v1/channels/{channel}/rollback", auth.Publish, pathChannel, s.rollback)
	s.handle("PUT /v1/channels/{channel}/pin", auth.Publish, pathChannel, s.pin)
	s.handle("DELETE /v1/channels/{channel}/pin", auth.Publish, pathChannel, s.unpin)
	s.handle("POST /v1/channels/{channel}/pause", auth.Publish, pathChannel, s.pause)
	s.handle("POST /v1/channels/{channel}/resume", auth.Publish, pathChannel, s.resume)
	s.handle("GET /v1/nodes", auth.Read, nil, s.listNodes)
	s.handle("GET /v1/nodes/{node}/desired", auth.Node, pathNode, s.desired)
	s.handle("PUT /v1/nodes/{node}/status", auth.Node, pathNode, s.reportStatus)
}

func pathChannel(r *http.Request) string { return r.PathValue("channel") }
func pathNode(r *http.Request) string    { return r.PathValue("node") }

// handlerFunc does a request's work and returns the value to encode as
// JSON with the status, or an error for writeError.
type handlerFunc func(r *http.Request, p auth.Principal) (int, any, error)

// handle registers pattern behind auth. target names what the action
// applies to (the channel or node in the path); nil means the handler
// checks scope itself (channel creation, whose name is in the body).
func (s *Server) handle(pattern string, act auth.Action, target func(*http.Request) string, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := s.requireClientCert(r); err != nil {
			writeError(w, r, err)
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		name := ""
		if target != nil {
			name = target(r)
		}
		if target != nil || act != auth.Publish {
			if !p.Allowed(act, name) {
				writeError(w, r, forbidden(p, act, name))
				return
			}
		}
		status, body, err := h(r, p)
		if err != nil {
			writeError(w, r, err)
			return
		}
		writeJSON(w, status, body)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.m.Ready(ctx); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
