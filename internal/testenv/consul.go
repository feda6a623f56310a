//go:build linux

package testenv

import (
	"bytes"
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	consulReadyTimeout = 30 * time.Second
	consulStopTimeout  = 5 * time.Second
	consulLogTail      = 40 // lines of the agent's log shown on failure
)

// Consul is a `consul agent -dev` serving on 127.0.0.1 for one test.
//
// A dev agent keeps its data in memory: Restart brings it back on the same
// ports but empty, with a new cluster and raft indexes starting over.
type Consul struct {
	// Addr is the HTTP API's "127.0.0.1:PORT".
	Addr string

	bin     string
	args    []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been reaped
}

// StartConsul starts a dev agent that lives until the test ends, and waits
// until it has elected itself leader. Its log is printed if the test fails.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	return StartConsulOn(t, "127.0.0.1")
}

// StartConsulOn is StartConsul on another local address: the end-to-end
// test binds one that the cluster's pods reach (testenv.ClusterAddr).
func StartConsulOn(t testing.TB, host string) *Consul {
	t.Helper()
	c := &Consul{
		bin:     Tool(t, "consul"),
		logPath: filepath.Join(t.TempDir(), "consul.log"),
	}
	c.Addr, c.args = consulArgs(t, host)
	// Cleanups run last-in first-out: stop the agent, then show its log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: consul log (last %d lines of %s):\n%s", consulLogTail, c.logPath, c.logTail())
		}
	})
	t.Cleanup(c.Stop)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// consulArgs picks distinct free ports for the HTTP API and the ports a dev
// server opens anyway (Serf LAN and WAN, server RPC), and turns off DNS and
// gRPC, which the tests do not use.
func consulArgs(t testing.TB, host string) (string, []string) {
	ports := make(map[int]bool)
	for len(ports) < 4 {
		ports[FreePort(t)] = true
	}
	var p []int
	for port := range ports {
		p = append(p, port)
	}
	args := []string{
		"agent", "-dev", "-log-level=warn", "-node=hydra-test",
		"-bind=" + host, "-client=" + host,
		"-http-port=" + strconv.Itoa(p[0]),
		"-serf-lan-port=" + strconv.Itoa(p[1]),
		"-serf-wan-port=" + strconv.Itoa(p[2]),
		"-server-port=" + strconv.Itoa(p[3]),
		"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1",
	}
	return net.JoinHostPort(host, strconv.Itoa(p[0])), args
}

// start launches the agent and waits until it is ready.
func (c *Consul) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testenv: consul log: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(c.bin, c.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Killed with the test binary, even when a timeout panic skips cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start %s: %w", c.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	c.cmd, c.exited = cmd, exited
	if err := c.waitReady(exited); err != nil {
		c.stopLocked()
		return fmt.Errorf("%w\nconsul log (last %d lines):\n%s", err, consulLogTail, c.logTail())
	}
	return nil
}

// waitReady polls /v1/status/leader until it names a leader.
func (c *Consul) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), consulReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = c.leaderElected(ctx); last == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("testenv: consul agent at %s exited before it was ready", c.Addr)
		case <-ctx.Done():
			return fmt.Errorf("testenv: consul agent at %s not ready after %v: %w", c.Addr, consulReadyTimeout, last)
		case <-tick.C:
		}
	}
}

func (c *Consul) leaderElected(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.Addr+"/v1/status/leader", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var leader string
	if err := json.NewDecoder(resp.Body).Decode(&leader); err != nil {
		return fmt.Errorf("status %s: %w", resp.Status, err)
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	return nil
}

// Stop stops the agent (SIGTERM, then SIGKILL) and reaps it. It may be
// called any number of times.
func (c *Consul) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked()
}

func (c *Consul) stopLocked() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(consulStopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
}

// StartConsulServer starts a one-server Consul that keeps its data on disk
// (not a dev agent): Kill and Start bring it back with everything it had,
// as a crashed server restarts. It lives until the test ends.
func StartConsulServer(t testing.TB) *Consul {
	t.Helper()
	c := &Consul{
		bin:     Tool(t, "consul"),
		logPath: filepath.Join(t.TempDir(), "consul.log"),
	}
	var args []string
	c.Addr, args = consulArgs(t, "127.0.0.1")
	for _, a := range args {
		if a != "-dev" {
			c.args = append(c.args, a)
		}
	}
	c.args = append(c.args, "-server", "-bootstrap-expect=1", "-data-dir="+t.TempDir(), "-ui=false")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: consul log (last %d lines of %s):\n%s", consulLogTail, c.logPath, c.logTail())
		}
	})
	t.Cleanup(c.Stop)
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Kill ends the agent with SIGKILL, as a crash would, and reaps it.
func (c *Consul) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	c.cmd = nil
}

// Start starts a stopped or killed agent again on the same ports and
// waits until it has a leader.
func (c *Consul) Start(t testing.TB) {
	t.Helper()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// Restart stops the agent and starts it again on the same ports. A dev
// agent's data is lost (it keeps it in memory); a server's is kept.
func (c *Consul) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	if err := c.start(); err != nil {
		t.Fatal(err)
	}
}

// Client returns an API client for the agent, for tests that look behind
// the code under test (sessions, raw keys).
func (c *Consul) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = c.Addr
	cfg.Token = ""
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("testenv: consul client for %s: %v", c.Addr, err)
	}
	return client
}

// logTail returns the last lines of the agent's log.
func (c *Consul) logTail() string {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > consulLogTail {
		lines = lines[len(lines)-consulLogTail:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
