package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"testing"
)

// RunWithBinary builds the command pkg (an import path) into a temp dir,
// points *bin at it, runs the tests and removes the dir: for a TestMain
// whose tests start the real binary, so that it is built once per test
// binary. It returns the exit code for os.Exit.
func RunWithBinary(m *testing.M, pkg string, bin *string) int {
	return RunWithBinaries(m, map[string]*string{pkg: bin})
}

// RunWithBinaries is RunWithBinary for several commands.
func RunWithBinaries(m *testing.M, bins map[string]*string) int {
	dir, err := os.MkdirTemp("", "hydra-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	for pkg, bin := range bins {
		*bin = filepath.Join(dir, path.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}
