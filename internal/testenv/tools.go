// Package testenv starts the real peers Hydra's tests talk to — MinIO,
// Consul, and later etcd and kube-apiserver — from binaries that
// `make tools` builds into a cache outside the repository.
//
// A test that needs a binary that is not there fails with a message that
// says how to get it; nothing is skipped silently. Under `go test -short`
// (make test-unit, the fast tier) such a test skips instead, saying what it
// needs: the fast tier runs without root, peers or the tools cache.
package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// ToolsDir is where `make tools` (hack/tools.sh) puts binaries:
// $HYDRA_TOOLS_DIR, else $XDG_CACHE_HOME/hydra/bin, else ~/.cache/hydra/bin.
func ToolsDir() string {
	if d := os.Getenv("HYDRA_TOOLS_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "hydra", "bin")
}

// Tool returns the path of a binary built by `make tools`, failing the test
// with instructions when it is missing. Name it with a string literal:
// TestDefaultToolsCoverTheTests reads every call to check that
// hack/tools.sh builds the tool by default.
func Tool(t testing.TB, name string) string {
	t.Helper()
	return lookTool(t, name)
}

// Tools is Tool for several binaries at once, by name (string literals, as
// for Tool).
func Tools(t testing.TB, names ...string) map[string]string {
	t.Helper()
	paths := make(map[string]string, len(names))
	for _, name := range names {
		paths[name] = lookTool(t, name)
	}
	return paths
}

func lookTool(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("testenv: needs %s from the tools cache; the fast tier (-short) runs no peers, make test does", name)
	}
	p := filepath.Join(ToolsDir(), name)
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("testenv: %s not found at %s: run `make tools` (or hack/tools.sh %s) to build it; "+
			"set HYDRA_TOOLS_DIR if your tools live elsewhere", name, p, name)
	}
	return p
}

// RequireRoot stops a test that needs root (real mounts, containers,
// network namespaces), saying why: under -short it skips, otherwise it
// fails, so that `make test` never passes over it silently.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if testing.Short() {
		t.Skipf("testenv: needs root (%s); the fast tier (-short) skips it, make test runs it as root", why)
	}
	t.Fatalf("testenv: needs root (%s): run the tests as root", why)
}

// RequireHost stops a test that needs host programs the fast tier does not
// have (containerd, iptables, ...) when one is missing from PATH: under
// -short it skips, otherwise it fails with the install command.
func RequireHost(t testing.TB, install string, bins ...string) {
	t.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err == nil {
			continue
		}
		if testing.Short() {
			t.Skipf("testenv: needs %s; the fast tier (-short) skips it, make test installs it", bin)
		}
		t.Fatalf("testenv: %s not found: %s", bin, install)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// HostPort joins 127.0.0.1 and port.
func HostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
