package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// profileEnv names the file a hydra built with the profiling overlay
// writes its CPU profile to.
const profileEnv = "HYDRA_BENCH_CPUPROFILE"

// profileHook is added to package main of cmd/hydra by the overlay; hydra's
// own sources stay as they are.
const profileHook = `package main

import (
	"os"
	"runtime/pprof"
)

var benchProfile *os.File

func init() {
	path := os.Getenv("` + profileEnv + `")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		panic("bench profile: " + err.Error())
	}
	benchProfile = f
}

func benchStopProfile() {
	if benchProfile != nil {
		pprof.StopCPUProfile()
		_ = benchProfile.Close()
	}
}
`

// writeProfileOverlay writes a `go build -overlay` file that builds
// cmd/hydra with profileHook and with a main.go that stops the profile
// before os.Exit (which skips deferred calls). It returns the overlay's
// path. Only `make bench` with BENCH_PROFILE=1 builds hydra this way.
func writeProfileOverlay(workDir string) (string, error) {
	mainPath, err := filepath.Abs(filepath.Join("cmd", "hydra", "main.go"))
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(mainPath)
	if err != nil {
		return "", err
	}
	const exit = "os.Exit(code)"
	if strings.Count(string(src), exit) != 1 {
		return "", fmt.Errorf("profile overlay: %s no longer has one %q to hook", mainPath, exit)
	}
	dir := filepath.Join(workDir, "overlay")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	files := map[string]string{
		mainPath: strings.Replace(string(src), exit, "benchStopProfile()\n\t"+exit, 1),
		filepath.Join(filepath.Dir(mainPath), "zz_bench_profile.go"): profileHook,
	}
	replace := map[string]string{}
	for target, content := range files {
		path := filepath.Join(dir, filepath.Base(target))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return "", err
		}
		replace[target] = path
	}
	raw, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(dir, "overlay.json")
	return overlay, os.WriteFile(overlay, raw, 0o600)
}
