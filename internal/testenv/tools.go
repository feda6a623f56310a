// Package testenv starts the real peers Hydra's tests talk to — MinIO,
// Consul, and later etcd and kube-apiserver — from binaries that
// `make tools` builds into a cache outside the repository.
//
// A test that needs a binary that is not there fails with a message that
// says how to get it; nothing is skipped silently.
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
	p := filepath.Join(ToolsDir(), name)
	if _, err := exec.LookPath(p); err != nil {
		t.Fatalf("testenv: %s not found at %s: run `make tools` (or hack/tools.sh %s) to build it; "+
			"set HYDRA_TOOLS_DIR if your tools live elsewhere", name, p, name)
	}
	return p
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
