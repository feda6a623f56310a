package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// pprofEnv names the address on which a hydra-manager built with the
// profiling overlay serves net/http/pprof.
const pprofEnv = "HYDRA_BENCH_PPROF"

// pprofHook is added to package main of cmd/hydra-manager by the overlay;
// the manager's own sources stay as they are, and its API server does not
// serve the profiles.
const pprofHook = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("` + pprofEnv + `"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
}
`

// writePprofOverlay writes, into dir, a go build -overlay file that adds
// pprofHook to cmd/hydra-manager, and returns its path.
func writePprofOverlay(ctx context.Context, goCmd, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "list", "-f", "{{.Dir}}", managerPkg).Output() //nolint:gosec // G204: the go command the Makefile names
	if err != nil {
		return "", fmt.Errorf("locate %s: %w", managerPkg, err)
	}
	hook := filepath.Join(dir, "zz_bench_pprof.go")
	if err := os.WriteFile(hook, []byte(pprofHook), 0o600); err != nil {
		return "", err
	}
	target := filepath.Join(strings.TrimSpace(string(out)), "zz_bench_pprof.go")
	raw, err := json.Marshal(map[string]any{"Replace": map[string]string{target: hook}})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay.json")
	return overlay, os.WriteFile(overlay, raw, 0o600)
}

// profileManager takes, while the measured phase of d runs from now, a
// CPU profile over its second quarter and a goroutine dump at its middle,
// into dir as STORE-cpu.pprof and STORE-goroutines.txt. Failures are
// logged: a profile is a diagnosis, not a result.
func profileManager(ctx context.Context, addr, storeName, dir string, d time.Duration) {
	client := &http.Client{Timeout: d}
	get := func(path, file string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil) //nolint:gosec // G704: the loopback port we gave the manager
		if err == nil {
			err = fetchTo(client, req, filepath.Join(dir, storeName+"-"+file))
		}
		if err != nil && ctx.Err() == nil {
			log.Printf("profile %s: %v", path, err) //nolint:gosec // G706: our own values
		}
	}
	sleep(ctx, d/4)
	seconds := max(1, int((d / 4).Seconds()))
	get(fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), "cpu.pprof")
	get("/debug/pprof/goroutine?debug=1", "goroutines.txt")
}

func fetchTo(client *http.Client, req *http.Request, path string) error {
	resp, err := client.Do(req) //nolint:gosec // G704: the loopback port we gave the manager
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	f, err := os.Create(path) //nolint:gosec // G304: a name we built under the results directory
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
