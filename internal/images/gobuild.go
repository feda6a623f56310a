package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// VersionVar is the variable the Makefile's LDFLAGS stamp.
const VersionVar = "github.com/hydra-csi/hydra/pkg/version.Version"

// CrossBuild builds the main packages pkgs of the module in moduleDir into
// the directory out, one binary per package named after it, as static
// linux/amd64 executables with version stamped: what the images need
// whatever the host is. -trimpath keeps the binaries, and so the image
// digests, free of the paths they were built in.
func CrossBuild(ctx context.Context, moduleDir, out, version string, pkgs ...string) error {
	args := []string{"build", "-trimpath", "-ldflags", "-X " + VersionVar + "=" + version, "-o", out + "/"}
	cmd := exec.CommandContext(ctx, "go", append(args, pkgs...)...) //nolint:gosec // G204: our own packages, from hack/images and tests
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+OS, "GOARCH="+Arch)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("images: go build %s (CGO_ENABLED=0 GOOS=%s GOARCH=%s) in %s: %w\n%s",
			strings.Join(pkgs, " "), OS, Arch, moduleDir, err, output)
	}
	return nil
}
