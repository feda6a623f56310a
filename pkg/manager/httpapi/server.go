// Package httpapi serves the manager's core over HTTP/JSON under /v1, with
// bearer-token auth, /metrics, /healthz and /readyz. It is a thin adapter:
// decoding, auth and status codes here, every decision in package manager.
package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
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
	// MaxConcurrentPublishes bounds the publishes with a body over
	// LargePublishBody that run at once (see publishLimiter); default
	// DefaultMaxConcurrentPublishes.
	MaxConcurrentPublishes int
}

// Server is the HTTP handler of the manager.
type Server struct {
	m        *manager.Manager
	opts     Options
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	large    *publishLimiter
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
	if opts.MaxConcurrentPublishes <= 0 {
		opts.MaxConcurrentPublishes = DefaultMaxConcurrentPublishes
	}
	s := &Server{m: m, opts: opts, mux: http.NewServeMux()}
	var err error
	if s.large, err = newPublishLimiter(opts.MaxConcurrentPublishes, opts.Registry); err != nil {
		return nil, err
	}
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
	if err := s.routes(); err != nil {
		return nil, err
	}
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

func (s *Server) routes() error {
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	for _, rt := range s.apiRoutes() {
		scoped := rt.act == auth.ChangeChannel || rt.act == auth.Node
		if scoped && rt.target == nil && !rt.scopeInBody {
			return fmt.Errorf("httpapi: route %s: a %s route needs a target or scopeInBody", rt.pattern, rt.act)
		}
		s.handle(rt)
	}
	return nil
}

// route is one /v1 endpoint behind auth: the action it needs, where the
// action's target comes from (the channel or node in the path) and the
// handler. A publish or node route without a target must say that its
// handler checks the scope (scopeInBody: channel creation, whose name is
// in the body); New refuses one that says neither, so that no route skips
// the scope check by omission.
type route struct {
	pattern     string
	act         auth.Action
	target      func(*http.Request) string
	h           handlerFunc
	scopeInBody bool
}

// apiRoutes is the one table of /v1 routes: routes registers it, the
// audit log and the scope tests read it, so a new route cannot miss
// either.
func (s *Server) apiRoutes() []route {
	return []route{
		{"GET /v1/channels", auth.Read, nil, s.listChannels, false},
		{"POST /v1/channels", auth.ChangeChannel, nil, s.createChannel, true},
		{"GET /v1/channels/{channel}", auth.Read, nil, s.getChannel, false},
		{"DELETE /v1/channels/{channel}", auth.Admin, nil, s.deleteChannel, false},
		{"GET /v1/channels/{channel}/status", auth.Read, nil, s.channelStatus, false},
		{"GET /v1/channels/{channel}/releases", auth.Read, nil, s.listReleases, false},
		{"POST /v1/channels/{channel}/releases", auth.ChangeChannel, pathChannel, s.publish, false},
		{"GET /v1/channels/{channel}/releases/{version}", auth.Read, nil, s.getRelease, false},
		{"GET /v1/channels/{channel}/releases/{version}/manifest", auth.Read, nil, s.getManifest, false},
		{"DELETE /v1/channels/{channel}/releases/{version}", auth.ChangeChannel, pathChannel, s.deleteRelease, false},
		{"GET /v1/channels/{channel}/history", auth.Read, nil, s.history, false},
		{"PATCH /v1/channels/{channel}/config", auth.ChangeChannel, pathChannel, s.patchConfig, false},
		{"PUT /v1/channels/{channel}/head", auth.ChangeChannel, pathChannel, s.setHead, false},
		{"POST /v1/channels/{channel}/rollback", auth.ChangeChannel, pathChannel, s.rollback, false},
		{"PUT /v1/channels/{channel}/pin", auth.ChangeChannel, pathChannel, s.pin, false},
		{"DELETE /v1/channels/{channel}/pin", auth.ChangeChannel, pathChannel, s.unpin, false},
		{"POST /v1/channels/{channel}/pause", auth.ChangeChannel, pathChannel, s.pause, false},
		{"POST /v1/channels/{channel}/resume", auth.ChangeChannel, pathChannel, s.resume, false},
		{"GET /v1/nodes", auth.Read, nil, s.listNodes, false},
		{"DELETE /v1/nodes/{node}", auth.Admin, nil, s.forgetNode, false},
		{"GET /v1/nodes/{node}/desired", auth.Node, pathNode, s.desired, false},
		{"PUT /v1/nodes/{node}/status", auth.Node, pathNode, s.reportStatus, false},
	}
}

// mutating reports whether the route changes state: anything but a read.
func (rt route) mutating() bool {
	method, _, _ := strings.Cut(rt.pattern, " ")
	return method != http.MethodGet && method != http.MethodHead
}

func pathChannel(r *http.Request) string { return r.PathValue("channel") }
func pathNode(r *http.Request) string    { return r.PathValue("node") }

// handlerFunc does a request's work and returns the value to encode as
// JSON with the status, or an error for writeError.
type handlerFunc func(r *http.Request, p auth.Principal) (int, any, error)

// handle registers rt behind auth (client certificate, token, role and
// scope) and, for a mutating route, the audit log.
func (s *Server) handle(rt route) {
	s.mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
		if rt.mutating() {
			var rec *auditRecord
			w, r, rec = s.startAudit(w, r, rt)
			defer rec.log()
		}
		if err := s.requireClientCert(r); err != nil {
			writeError(w, r, err)
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		auditFrom(r).setPrincipal(p)
		name := ""
		if rt.target != nil {
			name = rt.target(r)
		}
		if !rt.scopeInBody && !p.Allowed(rt.act, name) {
			writeError(w, r, forbidden(p, rt.act, name))
			return
		}
		// Head moves record who asked for them.
		r = r.WithContext(manager.WithActor(r.Context(), p.ID))
		status, body, err := rt.h(r, p)
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
