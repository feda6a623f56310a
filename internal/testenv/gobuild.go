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
	name := path.Base(pkg)
	dir, err := os.MkdirTemp("", name+"-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	*bin = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", *bin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
		return 1
	}
	return m.Run()
}
