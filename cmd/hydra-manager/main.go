// Command hydra-manager serves Hydra's control plane: the HTTP API that
// publishers and node agents use, over a bbolt or Consul state store.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/internal/tlsfiles"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	stop()
	klog.Flush()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hydra-manager: %v\n", err)
		os.Exit(1)
	}
}

// run parses args and serves until ctx ends. When listening is not nil it
// receives the bound address (tests listen on port 0).
func run(ctx context.Context, args []string, stderr io.Writer, listening chan<- string) error {
	opts := DefaultOptions()
	fs := pflag.NewFlagSet("hydra-manager", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	opts.AddFlags(fs)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return serve(ctx, opts, listening)
}

func serve(ctx context.Context, opts Options, listening chan<- string) (err error) {
	var tokens *auth.Tokens
	if opts.TokenFile != "" {
		if tokens, err = auth.LoadFile(opts.TokenFile); err != nil {
			return err
		}
	} else {
		klog.InfoS("WARNING: serving without authentication (--insecure-no-auth); every caller is admin")
	}
	st, err := store.Open(ctx, opts.Store)
	if err != nil {
		return err
	}
	// Close releases the bbolt file or resigns Consul leadership; its
	// failure is returned with serve's own error, not lost.
	defer func() {
		if cerr := st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close store %s: %w", opts.Store, cerr))
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	kube, err := opts.kubeClient()
	if err != nil {
		return err
	}
	var peerSecret []byte // without tokens, New draws a random one
	if tokens != nil {
		peerSecret = tokens.PeerSecret()
	}
	m, err := manager.New(manager.Options{Store: st, Registerer: reg, RetentionInterval: opts.RetentionInterval,
		Kube: kube, Lease: opts.lease(kube), NodeReportTTL: opts.NodeReportTTL, PeerSecret: peerSecret})
	if err != nil {
		return err
	}
	tlsCfg, err := opts.serverTLS()
	if err != nil {
		return err
	}
	handler, err := httpapi.New(m, httpapi.Options{Tokens: tokens, Registry: reg, RequireClientCert: opts.TLSClientCA != "",
		MaxConcurrentPublishes: opts.MaxConcurrentPublishes})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	klog.InfoS("hydra-manager serving", "address", ln.Addr().String(), "store", opts.Store,
		"tls", tlsCfg != nil, "clientCerts", opts.TLSClientCA != "")
	if tlsCfg == nil {
		klog.InfoS("WARNING: serving plain HTTP (no --tls-cert): bearer tokens and manifests cross the network in clear text")
	}
	if listening != nil {
		listening <- ln.Addr().String()
	}
	return serveUntilDone(ctx, opts, m, handler, ln, tlsCfg)
}

// serverTLS reads the TLS flags' files: the listener's TLS config, or nil
// to serve plain HTTP. An unreadable or mismatched file fails the start
// with the flag that names it.
func (o *Options) serverTLS() (*tls.Config, error) {
	if o.TLSCert == "" {
		return nil, nil
	}
	kp, err := tlsfiles.LoadKeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	var clientCAs *x509.CertPool
	if o.TLSClientCA != "" {
		if clientCAs, err = tlsfiles.LoadCAPool(o.TLSClientCA); err != nil {
			return nil, fmt.Errorf("--tls-client-ca: %w", err)
		}
	}
	return httpapi.TLSConfig(kp, clientCAs), nil
}

// serveUntilDone runs the manager's loops and the HTTP server until ctx
// ends, then shuts down in order:
//  1. wake every long-poll, so nodes reconnect (to another replica) at once;
//  2. stop accepting and let in-flight requests finish (bounded);
//  3. stop the loops, resigning leadership so another replica takes over.
func serveUntilDone(ctx context.Context, opts Options, m *manager.Manager, h http.Handler, ln net.Listener, tlsCfg *tls.Config) error {
	loopCtx, stopLoops := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = m.Run(loopCtx) }()

	// ErrorLog: failed TLS handshakes (a client without the CA) and
	// accept errors go to klog, not to the bare standard logger.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		TLSConfig: tlsCfg, ErrorLog: klog.NewStandardLogger("INFO")}
	serveErr := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the files are in tlsCfg
			return
		}
		serveErr <- srv.Serve(ln)
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	klog.InfoS("shutting down")
	m.Shutdown() // (1)
	shutCtx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); serr != nil { // (2)
		klog.ErrorS(serr, "HTTP shutdown did not finish in time")
	}
	stopLoops() // (3)
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
