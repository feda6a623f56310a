//go:build linux

package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 20 * time.Second

// logTail is how much of a process's log a failed test prints.
const logTail = 16 << 10

// Proc is a process running in a node's namespace (ip netns exec, which
// also gives it a mount namespace of its own: its mounts stay private to
// it and go when it ends), or on the host (HostCommand). It can be killed
// and started again on the same command line; its output is appended to
// one log file across restarts.
type Proc struct {
	// Name names the process in messages and its log file.
	Name string
	// Log is the path of its log.
	Log string

	ns   *Netns
	argv []string
	env  []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Command prepares a process in the namespace: argv[0] with argv[1:], env
// as its whole environment (nil: the test's). Its log lives in the node's
// directory. In t.Cleanup it is stopped (SIGTERM, then SIGKILL), and its log
// tail printed if the test failed; the network's teardown kills it anyway.
func (ns *Netns) Command(t testing.TB, name string, env []string, argv ...string) *Proc {
	t.Helper()
	return ns.net.command(t, ns, filepath.Join(ns.Dir, name+".log"), name, env, argv)
}

// HostCommand is Command for a process on the host side of the bridge
// (the manager), with its log in the network's data directory.
func (n *Network) HostCommand(t testing.TB, name string, env []string, argv ...string) *Proc {
	t.Helper()
	return n.command(t, nil, filepath.Join(n.DataDir, name+".log"), name, env, argv)
}

func (n *Network) command(t testing.TB, ns *Netns, log, name string, env, argv []string) *Proc {
	t.Helper()
	if len(argv) == 0 {
		t.Fatalf("fleet: process %s: no command", name)
	}
	p := &Proc{Name: name, Log: log, ns: ns, argv: argv, env: env}
	n.procs.add(p)
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("fleet: %s log (%s), last %d bytes:\n%s", name, p.Log, logTail, testenv.ReadTail(p.Log, logTail))
		}
	})
	return p
}

// Start launches the process. It dies with the test binary (Pdeathsig),
// however that ends.
func (p *Proc) Start() error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("fleet: %s: open log: %w", p.Name, err)
	}
	defer logf.Close() // the child has its own descriptor
	// ip netns exec execs the command in place: the PID is the command's.
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	where := "the host"
	if p.ns != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", p.ns.Name}, p.argv...)...)
		where = p.ns.Name
	}
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("fleet: %s: already running as pid %d", p.Name, p.cmd.Process.Pid)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("fleet: %s: start %v in %s: %w", p.Name, p.argv, where, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // the exit status is in ProcessState
	p.cmd, p.exited = cmd, exited
	return nil
}

// Exited is closed when the running process has ended; nil when none runs.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	return p.exited
}

// Pid is the running process's ID, 0 when none runs.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *Proc) Kill() { p.signal(syscall.SIGKILL, 0) }

// Stop ends the process with SIGTERM, SIGKILL after stopGrace, and reaps
// it. Calling it when nothing runs does nothing.
func (p *Proc) Stop() { p.signal(syscall.SIGTERM, stopGrace) }

func (p *Proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig) // fails only when it is gone already
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// Tail is the last n bytes of the log.
func (p *Proc) Tail(n int64) string { return testenv.ReadTail(p.Log, n) }

// procSet is every Proc of a network, for teardown and its check.
type procSet struct {
	mu    sync.Mutex
	procs []*Proc
}

func (s *procSet) add(p *Proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

func (s *procSet) killAll() {
	s.mu.Lock()
	procs := append([]*Proc(nil), s.procs...)
	s.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
}

// alive names the processes still running.
func (s *procSet) alive() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range s.procs {
		if pid := p.Pid(); pid != 0 {
			out = append(out, fmt.Sprintf("%s (pid %d)", p.Name, pid))
		}
	}
	return out
}
