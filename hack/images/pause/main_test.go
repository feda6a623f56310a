package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExitsZeroOnSignal runs the real binary and stops it as kubelet
// stops a sandbox (SIGTERM) and as a person does (SIGINT).
func TestExitsZeroOnSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stderr).ReadString('\n')
			if err != nil || !strings.Contains(line, "waiting for SIGTERM") {
				t.Fatalf("first line %q, %v", line, err)
			}
			// A SIGCHLD with nothing to reap must not stop it.
			if err := cmd.Process.Signal(syscall.SIGCHLD); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("after %v: %v, want exit status 0", sig, err)
			}
		})
	}
}

// TestReapCollectsExitedChildren leaves an exited child unwaited (a
// zombie, as orphans reparented to a pod's PID 1 are) and checks reap
// collects it.
func TestReapCollectsExitedChildren(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stat := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "stat")
	deadline := time.Now().Add(30 * time.Second)
	for !isZombie(t, stat) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d never exited", cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := reap(); n != 1 {
		t.Errorf("reap() = %d, want 1", n)
	}
	if _, err := os.Stat(stat); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the zombie is still there after reap: %v", err)
	}
	if n := reap(); n != 0 {
		t.Errorf("second reap() = %d, want 0", n)
	}
}

func isZombie(t *testing.T, stat string) bool {
	t.Helper()
	b, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ...: the state follows the last ')'.
	rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
	return strings.HasPrefix(strings.TrimSpace(rest), "Z")
}
