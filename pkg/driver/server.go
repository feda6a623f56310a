package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-lib-utils/protosanitizer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// Server serves a Driver over gRPC on a unix socket.
type Server struct {
	grpc *grpc.Server
	ln   net.Listener
}

// Listen opens the endpoint ("unix:///csi/csi.sock" or a plain path):
//  1. create the socket's directory 0700 (only root talks to the plugin);
//  2. remove a stale socket a killed plugin left (never another file);
//  3. listen, and register the services d serves.
func Listen(endpoint string, d *Driver) (*Server, error) {
	path, err := SocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil { // (1)
		return nil, fmt.Errorf("driver: socket directory: %w", err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil { //nolint:gosec // G302: a directory needs x; 0700 is owner-only
		return nil, fmt.Errorf("driver: socket directory: %w", err)
	}
	if err := RemoveStaleSocket(path); err != nil { // (2)
		return nil, fmt.Errorf("driver: %w", err)
	}
	ln, err := net.Listen("unix", path) // (3)
	if err != nil {
		return nil, fmt.Errorf("driver: listen on %s: %w", path, err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(logRPC))
	csi.RegisterIdentityServer(srv, d)
	if d.opts.Controller {
		csi.RegisterControllerServer(srv, d)
	}
	if d.opts.Node {
		csi.RegisterNodeServer(srv, d)
	}
	return &Server{grpc: srv, ln: ln}, nil
}

// SocketPath is the file of a unix endpoint: it accepts unix:///abs/path,
// unix:/abs/path and /abs/path.
func SocketPath(endpoint string) (string, error) {
	p := endpoint
	if rest, ok := strings.CutPrefix(endpoint, "unix://"); ok {
		p = rest
	} else if rest, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		p = rest
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("driver: endpoint %q: want unix:///ABSOLUTE/PATH", endpoint)
	}
	return filepath.Clean(p), nil
}

// RemoveStaleSocket removes the unix socket a killed process left at
// path, so that a new listener can bind there; a missing path is fine, and
// anything but a socket is refused, never removed.
func RemoveStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("socket %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket; refusing to remove it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// Addr is the socket's path.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until Stop; it returns nil after a Stop.
func (s *Server) Serve() error {
	err := s.grpc.Serve(s.ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop lets running RPCs finish for up to grace, then cuts them off.
func (s *Server) Stop(grace time.Duration) {
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		s.grpc.Stop()
		<-done
	}
	// gRPC closes only listeners it served; one never served (a start
	// that failed after Listen) would keep its socket file.
	_ = s.ln.Close()
}

// logRPC logs each call (V(4): method, duration, code; V(5): the request
// with its secrets stripped) and maps its error to a gRPC status. The
// handler gets the call's logger in its context, carrying the method and,
// where the request names one, the volume ID: a handler logs through
// klog.FromContext(ctx) and its lines say which call they belong to.
func logRPC(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	logger := klog.FromContext(ctx).WithValues("method", info.FullMethod)
	if r, ok := req.(interface{ GetVolumeId() string }); ok && r.GetVolumeId() != "" {
		logger = logger.WithValues("volumeID", r.GetVolumeId())
	}
	ctx = klog.NewContext(ctx, logger)
	if v := logger.V(5); v.Enabled() {
		v.Info("RPC request", "request", protosanitizer.StripSecrets(req))
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	err = toStatus(err)
	code := status.Code(err)
	if err != nil {
		logger.V(2).Info("RPC failed", "code", code.String(), "seconds", time.Since(start).Seconds(), "err", err.Error())
	} else {
		logger.V(4).Info("RPC done", "code", code.String(), "seconds", time.Since(start).Seconds())
	}
	if v := logger.V(5); v.Enabled() && err == nil {
		v.Info("RPC response", "response", protosanitizer.StripSecrets(resp))
	}
	return resp, err
}
