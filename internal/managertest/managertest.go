// Package managertest runs a real manager (core and HTTP API) in-process
// for tests of the packages around it: the CLI, the API layer, benchmarks.
// It lives apart from testenv, which the store's own tests import.
package managertest

import (
	"context"
	"crypto/tls"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Options configure Start; the zero value is a manager on a
// fresh bbolt file, without auth, on the real clock.
type Options struct {
	// Store to serve; nil opens a fresh bbolt file in a temp dir.
	Store *store.Store
	// Clock for the core (a fake clock in time-based tests).
	Clock clock.WithTicker
	// RetentionInterval of the leader's loop; zero keeps the default.
	RetentionInterval time.Duration
	// HTTP configures the API layer (tokens, body limits); its Registry
	// is always a fresh one shared with the core.
	HTTP httpapi.Options
	// TLS, when not nil, serves https:// with it (see httpapi.TLSConfig).
	TLS *tls.Config
	// Kube, when not nil, is the manager's Kubernetes API (rollouts and
	// the Nodes' zones).
	Kube kubernetes.Interface
}

// Manager is a running manager with its HTTP API on loopback.
type Manager struct {
	*manager.Manager
	Store *store.Store
	URL   string
}

// Start runs the real manager core and HTTP layer in-process, waits
// until it is ready, and stops everything (store included) in t.Cleanup.
func Start(t testing.TB, opts Options) *Manager {
	t.Helper()
	s := opts.Store
	if s == nil {
		b, err := store.OpenBolt(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatalf("managertest: %v", err)
		}
		s = store.New(b)
	}
	reg := prometheus.NewRegistry()
	var peerSecret []byte // as hydra-manager derives it
	if opts.HTTP.Tokens != nil {
		peerSecret = opts.HTTP.Tokens.PeerSecret()
	}
	m, err := manager.New(manager.Options{Store: s, Clock: opts.Clock, Registerer: reg, RetentionInterval: opts.RetentionInterval,
		Kube: opts.Kube, PeerSecret: peerSecret})
	if err != nil {
		t.Fatalf("managertest: %v", err)
	}
	opts.HTTP.Registry = reg
	h, err := httpapi.New(m, opts.HTTP)
	if err != nil {
		t.Fatalf("managertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	srv := httptest.NewUnstartedServer(h)
	url := "http://" + srv.Listener.Addr().String()
	if opts.TLS != nil {
		// Not StartTLS: it adds its own certificate, which crypto/tls
		// prefers to GetCertificate for clients that send no SNI (an IP).
		srv.Listener = tls.NewListener(srv.Listener, opts.TLS)
		url = "https://" + srv.Listener.Addr().String()
	}
	srv.Start()
	t.Cleanup(func() {
		m.Shutdown() // answer long-polls so the server can close
		srv.Close()
		cancel()
		<-done
		if err := s.Close(); err != nil {
			t.Errorf("managertest: close store: %v", err)
		}
	})
	waitManagerReady(t, m)
	return &Manager{Manager: m, Store: s, URL: url}
}

func waitManagerReady(t testing.TB, m *manager.Manager) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for m.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			t.Fatal("managertest: manager never became ready")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
