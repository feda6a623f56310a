package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/internal/benchenv"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// benchVersion is the one release published per shape.
const benchVersion = "v1"

// channelOf is the channel that holds a shape's release.
func channelOf(s shape) string { return "bench-" + s.ID() }

// bench is a prepared environment: binaries, filesystems, MinIO with the
// shapes' objects, a manager with a release per shape.
type bench struct {
	cfg                       config
	binDir, toolsDir, workDir string
	profileDir                string
	scratch                   *scratch
	minio                     *minio
	manager                   *server
	managerURL                string
	machine                   string
	revision                  string // of the checkout hydra was built from
	logs                      string
}

// setup prepares the bench; on error, the returned bench (when not nil)
// still has to be closed.
func setup(ctx context.Context, cfg config) (*bench, error) {
	b := &bench{cfg: cfg, toolsDir: cfg.toolsDir, machine: benchenv.Machine()}
	if err := b.prepareDirs(); err != nil {
		return nil, err
	}
	tools := []string{"minio"}
	for _, c := range cfg.contenders {
		if c.tool != "" {
			tools = append(tools, c.tool)
		}
	}
	for _, t := range tools {
		if _, err := os.Stat(filepath.Join(b.toolsDir, t)); err != nil {
			return nil, fmt.Errorf("%s is not in %s: run hack/tools.sh minio rclone mc", t, b.toolsDir)
		}
	}
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	var total, largest int64
	for _, s := range cfg.shapes {
		total += s.Bytes()
		largest = max(largest, s.Bytes())
	}
	// A tmpfs only takes the memory its files use; the limits are generous
	// where MinIO needs it: it refuses a PUT unless the drive keeps a few
	// GiB free beside twice the object (XMinioStorageFull). The destination
	// holds one run at a time, plus rclone's and hydra's bookkeeping.
	sc, err := newScratch(cfg.scratchDir, total+total/10+4<<30, largest+largest/10+256<<20)
	if err != nil {
		return nil, err
	}
	b.scratch = sc
	return b, b.start(ctx)
}

func (b *bench) prepareDirs() error {
	out, err := filepath.Abs(b.cfg.outDir)
	if err != nil {
		return err
	}
	b.workDir = filepath.Join(out, "work")
	b.binDir = filepath.Join(b.workDir, "bin")
	b.logs = filepath.Join(out, "logs")
	if err := os.RemoveAll(b.logs); err != nil {
		return err
	}
	dirs := []string{b.binDir, b.logs, filepath.Join(b.workDir, "mc")}
	if b.cfg.profile {
		b.profileDir = filepath.Join(out, "profiles")
		dirs = append(dirs, b.profileDir)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	// An empty rclone config: the remote comes from the environment only.
	return os.WriteFile(filepath.Join(b.workDir, "rclone.conf"), nil, 0o600)
}

// start runs MinIO, seeds it, runs the manager and publishes every shape.
func (b *bench) start(ctx context.Context) error {
	log.Printf("scratch: %s (%s); MinIO data on tmpfs: %t, destination on tmpfs: %t",
		b.scratch.root, b.scratch.how, isTmpfs(b.scratch.minioDir), isTmpfs(b.scratch.dstDir))
	var err error
	b.minio, err = startMinIO(filepath.Join(b.toolsDir, "minio"), b.scratch.minioDir, b.workDir)
	if err != nil {
		return err
	}
	t := time.Now()
	if err := seed(ctx, b.minio, b.cfg.shapes); err != nil {
		return err
	}
	log.Printf("seeded %d shapes into MinIO in %v", len(b.cfg.shapes), time.Since(t).Round(time.Second))
	b.manager, b.managerURL, err = startManager(filepath.Join(b.binDir, "hydra-manager"), b.workDir)
	if err != nil {
		return err
	}
	for _, s := range b.cfg.shapes {
		if err := b.publish(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// build compiles hydra, hydra-manager and sdkget from this checkout.
// With -profile, hydra gets the profiling overlay (profile.go).
func (b *bench) build(ctx context.Context) error {
	args := []string{"build", "-trimpath", "-o", b.binDir + "/"}
	if b.cfg.profile {
		overlay, err := writeProfileOverlay(b.workDir)
		if err != nil {
			return err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "./cmd/hydra", "./cmd/hydra-manager", "./tests/bench/download/sdkget")
	cmd := exec.CommandContext(ctx, b.cfg.goCmd, args...) //nolint:gosec // G204: the go command the Makefile names
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the binaries (run from the repository root): %w", err)
	}
	// The tree may hold uncommitted changes; "-dirty" says so in the report.
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	b.revision = strings.TrimSpace(string(out))
	if err != nil || b.revision == "" {
		b.revision = "unknown"
	}
	return nil
}

// publish creates the shape's channel and publishes its prefix, then
// checks that the manifest carries a CRC64NVME for every file: hydra pull
// verifies against it, which is the case the goals are about.
func (b *bench) publish(ctx context.Context, s shape) error {
	t := time.Now()
	for _, args := range [][]string{
		{"channel", "create", channelOf(s)},
		{"publish", channelOf(s), "--dataset", "d=s3://" + bucket + "/" + s.ID() + "/", "--version", benchVersion},
	} {
		cmd := exec.CommandContext(ctx, filepath.Join(b.binDir, "hydra"), append([]string{"--manager", b.managerURL}, args...)...) //nolint:gosec // G204: our own build
		cmd.Env = append(cleanEnv("HYDRA_"), b.minio.awsEnv()...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("hydra %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	cl, err := client.New(b.managerURL)
	if err != nil {
		return err
	}
	rel, err := cl.GetManifest(ctx, channelOf(s), benchVersion)
	if err != nil {
		return err
	}
	files := rel.Datasets[0].Manifest.Files
	for _, f := range files {
		if f.Checksum == nil || f.Checksum.Algorithm != release.ChecksumCRC64NVME {
			return fmt.Errorf("published %s has no CRC64NVME: %+v", f.Path, f.Checksum)
		}
	}
	if len(files) != s.count {
		return fmt.Errorf("published %s: %d files, want %d", channelOf(s), len(files), s.count)
	}
	log.Printf("published %s (%d files with CRC64NVME) in %v", channelOf(s), len(files), time.Since(t).Round(time.Millisecond))
	return nil
}

// measureAll runs, per shape, the warm-up rounds and then the counted
// ones; each round runs every contender once, in order.
func (b *bench) measureAll(ctx context.Context) ([]sample, error) {
	var out []sample
	for _, s := range b.cfg.shapes {
		log.Printf("shape %s (%d bytes); load average %s", s.Name(), s.Bytes(), benchenv.LoadAverage()) //nolint:gosec // G706: our own values
		for round := range b.cfg.warmup + b.cfg.rounds {
			for _, c := range b.cfg.contenders {
				smp, err := b.runOne(ctx, c, s, round)
				if err != nil {
					return nil, fmt.Errorf("%s on %s, round %d: %w", c.Name, s.Name(), round, err)
				}
				label := "warm-up"
				if round >= b.cfg.warmup {
					label = fmt.Sprintf("round %d", round-b.cfg.warmup+1)
					out = append(out, smp)
				}
				line := fmt.Sprintf("  %-8s %-13s %6.2fs %7.1f MB/s %5.2f CPU-s/GB %6.1f MiB RSS (MinIO %4.2f CPU-s/GB)",
					label, c.Name, smp.WallSec, smp.MBps(), smp.CPUPerGB(), smp.RSSMiB(), smp.ServerCPUPerGB())
				log.Print(line) //nolint:gosec // G706: our own values
			}
		}
	}
	return out, nil
}

// runOne downloads shape s with contender c into a fresh directory on the
// destination tmpfs, checks the result and removes it again.
func (b *bench) runOne(ctx context.Context, c contender, s shape, round int) (sample, error) {
	// G703 below: every path is one we built under the scratch directory.
	parent := filepath.Join(b.scratch.dstDir, fmt.Sprintf("r%d", round))
	if err := os.MkdirAll(parent, 0o750); err != nil { //nolint:gosec // G703
		return sample{}, err
	}
	defer func() { _ = os.RemoveAll(parent) }() //nolint:gosec // G703; a leftover only costs tmpfs space until close
	dst := filepath.Join(parent, c.Name)
	logPath := filepath.Join(b.logs, fmt.Sprintf("%s-%s-r%d.log", s.ID(), c.Name, round))
	smp, err := measure(ctx, c.command(b, s, dst), logPath, b.minio.server)
	if err != nil {
		return sample{}, err
	}
	if err := checkDownload(dst, s, round); err != nil {
		return sample{}, fmt.Errorf("download incomplete or wrong: %w", err)
	}
	smp.Shape, smp.Contender, smp.Round, smp.Bytes = s.Name(), c.Name, round-b.cfg.warmup+1, s.Bytes()
	return smp, nil
}

// printHold says how to run the contenders by hand against this setup.
func (b *bench) printHold(w io.Writer) {
	_, _ = fmt.Fprintf(w, "# Set up; Ctrl-C tears everything down. Destination tmpfs: %s\n", b.scratch.dstDir)
	for _, kv := range b.minio.awsEnv() {
		_, _ = fmt.Fprintf(w, "export %s\n", kv)
	}
	_, _ = fmt.Fprintf(w, "export HYDRA_MANAGER=%s PATH=%s:$PATH\n", b.managerURL, b.binDir)
	for _, s := range b.cfg.shapes {
		_, _ = fmt.Fprintf(w, "# %s: hydra pull %s@%s %s/out; sdkget -mode tuned s3://%s/%s/ %s/out\n",
			s.Name(), channelOf(s), benchVersion, b.scratch.dstDir, bucket, s.ID(), b.scratch.dstDir)
	}
}

// close stops the servers and releases the filesystems.
func (b *bench) close() error {
	if b.manager != nil {
		b.manager.stop()
	}
	if b.minio != nil {
		b.minio.stop()
	}
	if b.scratch != nil {
		return b.scratch.close()
	}
	return nil
}
