package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/klog/v2"
)

// probeTimeout bounds one /healthz call; the probe is a stat and a small
// write, so a store that takes longer is as good as unhealthy.
const probeTimeout = 10 * time.Second

// prober is the Identity service's Probe, called in-process.
type prober interface {
	Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error)
}

// healthServer answers GET /healthz as the livenessprobe sidecar would:
// 200 "ok" when Probe says ready, 503 with the reason otherwise.
type healthServer struct {
	http *http.Server
	ln   net.Listener
}

// listenHealth binds addr now, so that a port in use fails the start.
// It serves GET /healthz, and GET /metrics from metrics.
func listenHealth(addr string, p prober, metrics prometheus.Gatherer) (*healthServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--health-address %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { healthz(w, r, p) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return &healthServer{http: srv, ln: ln}, nil
}

func healthz(w http.ResponseWriter, r *http.Request, p prober) {
	ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
	defer cancel()
	resp, err := p.Probe(ctx, &csi.ProbeRequest{})
	switch {
	case err != nil:
		klog.V(5).InfoS("healthz: not ready", "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case resp.GetReady() != nil && !resp.GetReady().GetValue():
		klog.V(5).InfoS("healthz: probe says not ready")
		http.Error(w, "driver: probe: not ready", http.StatusServiceUnavailable)
	default:
		// An unset Ready means ready (CSI spec: "If not present, the
		// caller SHALL assume that the plugin is in a ready state").
		_, _ = w.Write([]byte("ok"))
	}
}

// addr is where the server listens (the port chosen for :0).
func (s *healthServer) addr() string { return s.ln.Addr().String() }

// serve serves until stop.
func (s *healthServer) serve() error {
	if err := s.http.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("healthz: %w", err)
	}
	return nil
}

// stop closes the listener and waits briefly for probes in flight.
func (s *healthServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		klog.ErrorS(err, "healthz: shutdown")
	}
}
