// Package version holds the version stamped into binaries at build time.
package version

// Version is set with -ldflags "-X github.com/hydra-csi/hydra/pkg/version.Version=...".
var Version = "dev"
