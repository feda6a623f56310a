// Command images builds Hydra's container images without a container
// engine, as docker-archive tarballs for `ctr -n k8s.io images import` or
// `docker load` (docs/images.md). `make images` runs it:
//
//	go run ./hack/images -out DIR -tag TAG [-version V] [-support]
//
// It cross-builds the binaries (static linux/amd64) into a temp dir, then
// writes hydra-manager.tar, hydra-csi.tar and hydra-csi-node.tar, and with
// -support the end-to-end test's pause.tar, busybox.tar and
// csi-provisioner.tar. The same inputs give the same digests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hydra-csi/hydra/internal/images"
)

// Options are the command's flags.
type Options struct {
	Out      string // where the tarballs go
	Tag      string // the tag of Hydra's images
	Version  string // stamped into the binaries; the tag by default
	Support  bool   // also write the end-to-end test's images
	ToolsDir string // where hack/tools.sh put csi-provisioner
	CACerts  string
	Busybox  string
}

// AddFlags registers the options on fs.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Out, "out", "_output/images", "directory the tarballs are written to")
	fs.StringVar(&o.Tag, "tag", "dev", "tag of the hydra images (ghcr.io/hydra-csi/NAME:TAG)")
	fs.StringVar(&o.Version, "version", "", "version stamped into the binaries (default: the tag)")
	fs.BoolVar(&o.Support, "support", false, "also write pause, busybox and csi-provisioner images for the registry-less end-to-end test")
	fs.StringVar(&o.ToolsDir, "tools-dir", defaultToolsDir(), "where hack/tools.sh builds csi-provisioner ($HYDRA_TOOLS_DIR)")
	fs.StringVar(&o.CACerts, "ca-certs", images.DefaultCACerts, "host CA bundle copied into the images")
	fs.StringVar(&o.Busybox, "busybox", images.DefaultBusybox, "host static busybox (Debian's busybox-static)")
}

// defaultToolsDir is hack/tools.sh's cache directory.
func defaultToolsDir() string {
	if d := os.Getenv("HYDRA_TOOLS_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "hydra", "bin")
}

// Validate refuses options the build cannot use, before anything is built.
func (o *Options) Validate() error {
	if o.Out == "" {
		return errors.New("images: -out is empty")
	}
	if _, err := name.NewTag("ghcr.io/x/y:" + o.Tag); err != nil || o.Tag == "" {
		return fmt.Errorf("images: -tag %q is not a valid image tag", o.Tag)
	}
	if o.Version == "" {
		o.Version = o.Tag
	}
	if strings.ContainsAny(o.Version, " \t\n'\"") {
		return fmt.Errorf("images: -version %q has spaces or quotes", o.Version)
	}
	// The host inputs are checked now rather than after a minute of build.
	if _, err := os.Stat(o.CACerts); err != nil {
		return fmt.Errorf("images: the CA bundle %s is missing (apt-get install -y ca-certificates)", o.CACerts)
	}
	if err := images.CheckBusybox(o.Busybox); err != nil {
		return err
	}
	if o.Support {
		if _, err := os.Stat(o.provisioner()); err != nil {
			return fmt.Errorf("images: %s is missing; build it with: hack/tools.sh csi-provisioner", o.provisioner())
		}
	}
	return nil
}

func (o *Options) provisioner() string { return filepath.Join(o.ToolsDir, "csi-provisioner") }

func main() {
	var o Options
	o.AddFlags(flag.CommandLine)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &o, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run builds the binaries into a temp dir, then writes each image and
// prints its file, tag, digest and size.
func run(ctx context.Context, o *Options, stdout io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "hydra-images-")
	if err != nil {
		return fmt.Errorf("images: temp dir: %w", err)
	}
	defer func() { _ = os.RemoveAll(bin) }()
	specs, err := buildSpecs(ctx, o, bin)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Out, 0o750); err != nil {
		return fmt.Errorf("images: -out: %w", err)
	}
	// Each line is printed as its image is written: each takes seconds.
	for _, s := range specs {
		r, err := images.Write(o.Out, s)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s  %s\n  digest %s  id %s  %.1f MiB\n",
			r.Path, r.Ref, r.Digest, r.ID, float64(r.Size)/(1<<20)); err != nil {
			return err
		}
	}
	return nil
}

// buildSpecs cross-builds the binaries into bin and returns the specs of
// the images to write.
func buildSpecs(ctx context.Context, o *Options, bin string) ([]images.Spec, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	pkgs := []string{"./cmd/hydra", "./cmd/hydra-manager", "./cmd/hydra-csi"}
	if o.Support {
		pkgs = append(pkgs, "./hack/images/pause")
	}
	if err := images.CrossBuild(ctx, root, bin, o.Version, pkgs...); err != nil {
		return nil, err
	}
	specs, err := images.Hydra(images.Inputs{
		Tag: o.Tag, Version: o.Version, CACerts: o.CACerts, Busybox: o.Busybox,
		Manager: filepath.Join(bin, "hydra-manager"),
		CLI:     filepath.Join(bin, "hydra"),
		CSI:     filepath.Join(bin, "hydra-csi"),
	})
	if err != nil || !o.Support {
		return specs, err
	}
	support, err := images.Support(images.SupportInputs{
		Pause: filepath.Join(bin, "pause"), Busybox: o.Busybox,
		Provisioner: o.provisioner(), CACerts: o.CACerts,
	})
	return append(specs, support...), err
}

// moduleRoot is the directory of Hydra's go.mod, wherever it is run from.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("images: run inside Hydra's module (go env GOMOD: %q): %w", gomod, err)
	}
	return filepath.Dir(gomod), nil
}
