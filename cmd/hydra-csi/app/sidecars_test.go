package app_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
)

// plugin is a hydra-csi --mode=node started in-process with the
// registration socket and /healthz on.
type plugin struct {
	dir, regSock, csiSock, cacheRoot, health string
	stop                                     func() error
}

// startPlugin runs app.Run as main does, with args added to the node
// flags, and waits until it serves.
func startPlugin(t *testing.T, args ...string) *plugin {
	t.Helper()
	mgr := managertest.Start(t, managertest.Options{})
	dir := t.TempDir()
	p := &plugin{dir: dir, regSock: filepath.Join(dir, "registry", "hydra.csi.dev-reg.sock"),
		csiSock: filepath.Join(dir, "csi", "csi.sock"), cacheRoot: filepath.Join(dir, "cache"),
		health: testenv.HostPort(testenv.FreePort(t))}
	args = append([]string{"--mode=node", "--endpoint=unix://" + p.csiSock, "--node-id=node-1",
		"--cache-root=" + p.cacheRoot, "--manager=" + mgr.URL,
		"--kubelet-registration-dir=" + filepath.Dir(p.regSock), "--health-address=" + p.health}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- app.Run(ctx, args, io.Discard, ready) }()
	stopped := false
	p.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("hydra-csi: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		stopped = true
		t.Fatalf("hydra-csi did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("hydra-csi did not start within a minute")
	}
	return p
}

// registrationClient dials the registration socket as kubelet does.
func registrationClient(t *testing.T, sock string) registerapi.RegistrationClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return registerapi.NewRegistrationClient(conn)
}

func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestKubeletRegistration plays kubelet's plugin watcher against the
// registration socket: GetInfo names the driver and the CSI endpoint
// (by default the path of --endpoint, else --kubelet-csi-endpoint), and
// both verdicts of NotifyRegistrationStatus are accepted. A stale socket
// is replaced at start, and the socket is gone after shutdown.
func TestKubeletRegistration(t *testing.T) {
	for _, tc := range []struct {
		name         string
		args         []string
		wantEndpoint func(p *plugin) string
	}{
		{"default endpoint", nil, func(p *plugin) string { return p.csiSock }},
		{"kubelet endpoint", []string{"--kubelet-csi-endpoint=/var/lib/kubelet/plugins/hydra.csi.dev/csi.sock"},
			func(*plugin) string { return "/var/lib/kubelet/plugins/hydra.csi.dev/csi.sock" }},
		{"kubelet endpoint as URL", []string{"--kubelet-csi-endpoint=unix:///var/lib/kubelet/plugins/hydra/csi.sock"},
			func(*plugin) string { return "/var/lib/kubelet/plugins/hydra/csi.sock" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlugin(t, tc.args...)
			fi, err := os.Stat(p.regSock)
			if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
				t.Fatalf("registration socket %s: %v, %v; want a socket 0600", p.regSock, fi, err)
			}
			reg := registrationClient(t, p.regSock)
			info, err := reg.GetInfo(rpcCtx(t), &registerapi.InfoRequest{})
			if err != nil {
				t.Fatalf("GetInfo: %v", err)
			}
			if info.GetType() != registerapi.CSIPlugin || info.GetName() != "hydra.csi.dev" ||
				info.GetEndpoint() != tc.wantEndpoint(p) || !slices.Equal(info.GetSupportedVersions(), []string{"1.0.0"}) {
				t.Errorf("GetInfo = %+v, want CSIPlugin hydra.csi.dev at %s, versions [1.0.0]", info, tc.wantEndpoint(p))
			}
			for _, st := range []*registerapi.RegistrationStatus{
				{PluginRegistered: true},
				{PluginRegistered: false, Error: "plugin hydra.csi.dev: version 0.1.0 not supported"},
			} {
				if _, err := reg.NotifyRegistrationStatus(rpcCtx(t), st); err != nil {
					t.Errorf("NotifyRegistrationStatus(%v): %v", st, err)
				}
			}
			if err := p.stop(); err != nil {
				t.Fatalf("hydra-csi: %v", err)
			}
			if _, err := os.Lstat(p.regSock); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("registration socket after shutdown: %v, want it removed", err)
			}
		})
	}
}

// TestStaleRegistrationSocket starts over a socket a killed plugin left.
func TestStaleRegistrationSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "registry")
	if err := os.Mkdir(dir, 0o755); err != nil { //nolint:gosec // G301: kubelet's mode for its registry
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "hydra.csi.dev-reg.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	startPlugin(t, "--kubelet-registration-dir="+dir)
	info, err := registrationClient(t, sock).GetInfo(rpcCtx(t), &registerapi.InfoRequest{})
	if err != nil || info.GetName() != "hydra.csi.dev" {
		t.Fatalf("GetInfo over the stale socket's path = %v, %v; want hydra.csi.dev", info, err)
	}
}

// TestHealthz checks /healthz answers with the Identity Probe: 200 "ok"
// while the cache root takes writes, 503 naming the cache root once it
// is gone, and nothing after shutdown.
func TestHealthz(t *testing.T) {
	p := startPlugin(t)
	url := "http://" + p.health + "/healthz"
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(url) //nolint:gosec // G107: the test's own loopback URL
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != http.StatusOK || body != "ok" {
		t.Errorf("GET /healthz = %d %q, want 200 \"ok\"", code, body)
	}
	if err := os.Rename(p.cacheRoot, p.cacheRoot+".moved"); err != nil {
		t.Fatal(err)
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "cache root") {
		t.Errorf("GET /healthz without the cache root = %d %q, want 503 naming the cache root", code, body)
	}
	if err := p.stop(); err != nil {
		t.Fatalf("hydra-csi: %v", err)
	}
	if resp, err := http.Get(url); err == nil { //nolint:gosec // G107: the test's own loopback URL
		_ = resp.Body.Close()
		t.Errorf("GET /healthz after shutdown answered %d, want the port closed", resp.StatusCode)
	}
}

// TestMetrics checks /metrics serves the node's metrics — the store's and
// the agent's — and the process's.
func TestMetrics(t *testing.T) {
	p := startPlugin(t)
	resp, err := http.Get("http://" + p.health + "/metrics") //nolint:gosec // G107: the test's own loopback URL
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d %q", resp.StatusCode, body)
	}
	// A counter of the store, one of the agent (both there before any
	// download) and a metric of the process.
	for _, name := range []string{"hydra_cache_downloaded_bytes_total", "hydra_agent_flips_total", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), "\n# TYPE "+name+" ") {
			t.Errorf("GET /metrics has no %s:\n%s", name, body)
		}
	}
}

// TestSidecarFlagsRefused checks bad values of the new flags stop the
// start with an error naming the flag, and leave an existing file alone.
func TestSidecarFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugins_registry")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name, wantFlag string
		args           []string
	}{
		{"registration dir is a file", "--kubelet-registration-dir", []string{"--kubelet-registration-dir=" + file}},
		{"registration dir relative", "--kubelet-registration-dir", []string{"--kubelet-registration-dir=plugins_registry"}},
		{"registration in controller mode", "--kubelet-registration-dir", []string{"--mode=controller", "--kubelet-registration-dir=" + dir}},
		{"kubelet endpoint relative", "--kubelet-csi-endpoint", []string{"--kubelet-registration-dir=" + dir, "--kubelet-csi-endpoint=csi.sock"}},
		{"kubelet endpoint without registration", "--kubelet-csi-endpoint", []string{"--kubelet-csi-endpoint=/csi/csi.sock"}},
		{"health address without port", "--health-address", []string{"--health-address=127.0.0.1"}},
		{"health address bad port", "--health-address", []string{"--health-address=:98080"}},
		{"health address in use", "--health-address", []string{"--health-address=" + busy.Addr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			args := append([]string{"--mode=node", "--endpoint=unix://" + filepath.Join(sub, "csi.sock"), "--node-id=node-1",
				"--cache-root=" + filepath.Join(sub, "cache"), "--manager=http://" + testenv.HostPort(testenv.FreePort(t))}, tc.args...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := app.Run(ctx, args, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantFlag) {
				t.Errorf("Run(%s) = %v, want an error naming %s", strings.Join(tc.args, " "), err, tc.wantFlag)
			}
			if _, err := os.Lstat(filepath.Join(sub, "csi.sock")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("CSI socket after the refused start: %v, want none", err)
			}
		})
	}
	if raw, err := os.ReadFile(file); err != nil || string(raw) != "not a directory" {
		t.Errorf("%s after the refused start: %q, %v; want it untouched", file, raw, err)
	}
}
