package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"k8s.io/klog/v2"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/hydra-csi/hydra/pkg/driver"
)

// registration answers kubelet's plugin watcher, as the
// node-driver-registrar sidecar would: kubelet finds the socket in its
// plugin registry, asks GetInfo, dials the CSI endpoint it names, and
// reports the outcome with NotifyRegistrationStatus.
type registration struct {
	registerapi.UnimplementedRegistrationServer
	driver   string
	endpoint string
}

// GetInfo names the plugin and where kubelet reaches its CSI socket.
func (r *registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	klog.V(4).InfoS("kubelet asked for the plugin's info", "driver", r.driver, "endpoint", r.endpoint)
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.driver,
		Endpoint:          r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus logs kubelet's verdict. A refusal is logged
// as an error and nothing more: kubelet retries when the socket is
// re-created, which a restart of the plugin does.
func (r *registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.GetPluginRegistered() {
		klog.InfoS("registered with kubelet", "driver", r.driver, "endpoint", r.endpoint)
	} else {
		klog.ErrorS(errors.New(st.GetError()), "kubelet refused the plugin's registration", "driver", r.driver, "endpoint", r.endpoint)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// registrationServer serves the registration service on its socket.
type registrationServer struct {
	grpc *grpc.Server
	ln   net.Listener
	path string
}

// listenRegistration opens <dir>/<driver>-reg.sock:
//  1. create the registry 0755 if kubelet has not yet (kubelet's own
//     mode; an existing directory is kubelet's and left as it is);
//  2. remove a stale socket a killed plugin left (never another file);
//  3. listen, and make the socket owner-only: only kubelet (root) dials it.
func listenRegistration(dir, driverName, csiEndpoint string) (*registrationServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: kubelet makes its registry 0755; the socket itself is 0600
		return nil, fmt.Errorf("--kubelet-registration-dir: %w", err)
	}
	path := filepath.Join(dir, driverName+"-reg.sock")
	if err := driver.RemoveStaleSocket(path); err != nil { // (2)
		return nil, fmt.Errorf("kubelet registration: %w", err)
	}
	ln, err := net.Listen("unix", path) // (3)
	if err != nil {
		return nil, fmt.Errorf("kubelet registration: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("kubelet registration: socket %s: %w", path, err)
	}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, &registration{driver: driverName, endpoint: csiEndpoint})
	return &registrationServer{grpc: srv, ln: ln, path: path}, nil
}

// serve serves until stop; errors after a stop are not errors.
func (s *registrationServer) serve() error {
	err := s.grpc.Serve(s.ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kubelet registration: %w", err)
	}
	return nil
}

// stop ends the service and removes the socket, so that kubelet
// deregisters the plugin until the next start re-creates it.
func (s *registrationServer) stop() {
	s.grpc.Stop()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		klog.ErrorS(err, "kubelet registration: remove socket", "path", s.path)
	}
}
