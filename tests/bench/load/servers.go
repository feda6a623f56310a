package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// startTimeout bounds the wait for a server to answer its readiness check.
	startTimeout = 60 * time.Second
	// stopTimeout is the grace between SIGTERM and SIGKILL.
	stopTimeout = 15 * time.Second
	// consulTelemetry keeps Consul's counters for Prometheus-format reads
	// of /v1/agent/metrics (off by default); without a hostname prefix.
	consulTelemetry = `telemetry { prometheus_retention_time = "1h" disable_hostname = true }`
)

// server is a child process the benchmark keeps running: Consul or the
// manager. It dies with the benchmark (Pdeathsig) even on a crash.
type server struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// startServer runs bin with args and env, logging to logPath, and waits
// until ready says yes.
func startServer(name, bin string, args, env []string, logPath string, ready func() error) (*server, error) {
	logFile, err := os.Create(logPath) //nolint:gosec // G304: a name we built under the results directory
	if err != nil {
		return nil, err
	}
	s := &server{name: name, exited: make(chan struct{}), log: logPath}
	s.cmd = exec.Command(bin, args...) //nolint:gosec // G204: consul from the tools cache, hydra-manager we built
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		_ = s.cmd.Wait() // the exit status is in the log
		_ = logFile.Close()
		close(s.exited)
	}()
	if err := s.waitReady(ready); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return s, nil
}

func (s *server) waitReady(ready func() error) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited during startup: %v", s.name, s.cmd.ProcessState)
		case <-time.After(100 * time.Millisecond):
		}
		if last = ready(); last == nil {
			return nil
		}
	}
	return fmt.Errorf("%s not ready after %v: %w", s.name, startTimeout, last)
}

// stop ends the server: SIGTERM, then SIGKILL after a grace period.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM) // fails only if already gone
	select {
	case <-s.exited:
		return
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// getOK is a readiness check: url answers 200.
func getOK(url string) func() error {
	client := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := client.Get(url) //nolint:gosec // G107: a loopback URL we built
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// consul is a `consul agent -dev`: one server, its data in memory.
type consul struct {
	*server
	addr string // HTTP API, "127.0.0.1:PORT"
}

// startConsul runs a dev agent on loopback with distinct free ports for
// the HTTP API and the ports a dev server opens anyway, DNS and gRPC off
// (the flags internal/testenv uses), and telemetry kept for
// /v1/agent/metrics; it waits until the agent has elected itself leader.
// maxConns, when positive, replaces Consul's limit of concurrent HTTP
// connections from one client address (200), which the manager is.
func startConsul(bin, logPath string, maxConns int) (*consul, error) {
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	c := &consul{addr: "127.0.0.1:" + strconv.Itoa(ports[0])}
	args := []string{
		"agent", "-dev", "-log-level=warn", "-node=hydra-load",
		"-bind=127.0.0.1", "-client=127.0.0.1",
		"-http-port=" + strconv.Itoa(ports[0]),
		"-serf-lan-port=" + strconv.Itoa(ports[1]),
		"-serf-wan-port=" + strconv.Itoa(ports[2]),
		"-server-port=" + strconv.Itoa(ports[3]),
		"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1",
		"-hcl", consulTelemetry,
	}
	if maxConns > 0 {
		args = append(args, "-hcl", fmt.Sprintf("limits { http_max_conns_per_client = %d }", maxConns))
	}
	c.server, err = startServer("consul", bin, args, cleanEnv("CONSUL_"), logPath, c.leaderElected)
	return c, err
}

func (c *consul) leaderElected() error {
	resp, err := http.Get("http://" + c.addr + "/v1/status/leader") //nolint:gosec // G107: loopback
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var leader string
	if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil {
		return fmt.Errorf("consul /v1/status/leader: %s: %w", resp.Status, err)
	}
	if leader == "" {
		return errors.New("consul: no leader yet")
	}
	return nil
}

// startManager runs hydra-manager without auth on a loopback port, on
// storeURL, and waits until /readyz says its state is loaded. A non-empty
// pprofAddr is where a manager built with the overlay serves its profiles.
func startManager(bin, storeURL, logPath, pprofAddr string) (*server, string, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	args := []string{"--insecure-no-auth", "--listen", addr, "--store", storeURL}
	env := cleanEnv("HYDRA_", "CONSUL_", "KUBECONFIG", "POD_")
	if pprofAddr != "" {
		env = append(env, pprofEnv+"="+pprofAddr)
	}
	s, err := startServer("hydra-manager", bin, args, env, logPath, getOK("http://"+addr+"/readyz"))
	return s, "http://" + addr, err
}

// managerPkg is the command the benchmark builds and runs.
const managerPkg = "github.com/hydra-csi/hydra/cmd/hydra-manager"

// buildManager compiles hydra-manager from this checkout into dir, with
// the pprof overlay when profile is set, and returns its path and the
// revision it was built from.
func buildManager(ctx context.Context, goCmd, dir string, profile bool) (string, string, error) {
	bin := filepath.Join(dir, "hydra-manager")
	args := []string{"build", "-trimpath", "-o", bin}
	if profile {
		overlay, err := writePprofOverlay(ctx, goCmd, dir)
		if err != nil {
			return "", "", err
		}
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, goCmd, append(args, managerPkg)...) //nolint:gosec // G204: the go command the Makefile names
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("build hydra-manager (run inside the repository): %w", err)
	}
	// The tree may hold uncommitted changes; "-dirty" says so in the report.
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	rev := strings.TrimSpace(string(out))
	if err != nil || rev == "" {
		rev = "unknown"
	}
	return bin, rev, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// cleanEnv is the process environment without variables that start with
// any of the prefixes: a developer's profile must not leak in.
func cleanEnv(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}
