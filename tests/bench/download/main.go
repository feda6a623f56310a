// Command download is the download benchmark of Hydra's data plane (`make
// bench`): it measures `hydra pull` against rclone, mc and aws-sdk-go-v2's
// manager.Downloader, all fetching the same objects from one MinIO on
// loopback, with MinIO's data and every destination on tmpfs.
//
// For every shape (a number of objects of one size) it runs warm-up rounds,
// then counted rounds; each round runs every contender once, in a fixed
// order, into an empty directory. Per run it records wall time and, from
// the rusage of the contender's process, its CPU time and peak RSS. It
// prints a Markdown table of the medians, the ratio of hydra to the best
// other contender and the goals, and writes them with the raw samples and a
// PNG chart to the results directory.
//
// Configuration is by flag, each with an environment default (see -help):
//
//	BENCH_SHAPES=small BENCH_ROUNDS=3 go run ./tests/bench/download
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what a run measures and where it writes.
type config struct {
	shapes     []shape
	contenders []contender
	rounds     int
	warmup     int
	outDir     string
	toolsDir   string
	scratchDir string
	goCmd      string
	profile    bool
	// hydraEnv is added to the environment of every hydra pull, for
	// experiments such as GODEBUG or GOGC settings; empty in a real run.
	hydraEnv []string
	// hold stops after setup and waits for a signal, for experiments by
	// hand against the same MinIO and manager.
	hold bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := parseAndRun(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseAndRun(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	return run(ctx, cfg)
}

func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("download", flag.ContinueOnError)
	shapes := fs.String("shapes", envOr("BENCH_SHAPES", "full"), "shapes: presets full, small and/or COUNTxSIZE items, comma-separated (env BENCH_SHAPES)")
	names := fs.String("contenders", envOr("BENCH_CONTENDERS", "all"), "contenders, comma-separated; hydra always runs (env BENCH_CONTENDERS)")
	rounds := fs.Int("rounds", envInt("BENCH_ROUNDS", 3), "counted rounds per shape (env BENCH_ROUNDS)")
	warmup := fs.Int("warmup", envInt("BENCH_WARMUP", 1), "warm-up rounds per shape, not counted (env BENCH_WARMUP)")
	out := fs.String("out", envOr("BENCH_OUT", "_output/bench"), "results directory (env BENCH_OUT)")
	tools := fs.String("tools", envOr("HYDRA_TOOLS_DIR", defaultToolsDir()), "where hack/tools.sh put minio, rclone and mc (env HYDRA_TOOLS_DIR)")
	scratchDir := fs.String("scratch", os.Getenv("BENCH_SCRATCH"), "directory whose minio/ and dst/ hold the data; default: own tmpfs mounts as root, else /dev/shm (env BENCH_SCRATCH)")
	goCmd := fs.String("go", envOr("GO", "go"), "the go command that builds hydra (env GO)")
	profile := fs.Bool("profile", os.Getenv("BENCH_PROFILE") != "", "write a CPU profile of every hydra pull to OUT/profiles (env BENCH_PROFILE=1)")
	hydraEnv := fs.String("hydra-env", os.Getenv("BENCH_HYDRA_ENV"), "space-separated KEY=VALUE pairs added to hydra pull's environment, for experiments (env BENCH_HYDRA_ENV)")
	hold := fs.Bool("hold", os.Getenv("BENCH_HOLD") != "", "set up, print how to reach MinIO and the manager, and wait for Ctrl-C instead of measuring (env BENCH_HOLD=1)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{rounds: *rounds, warmup: *warmup, outDir: *out, toolsDir: *tools,
		scratchDir: *scratchDir, goCmd: *goCmd, profile: *profile, hydraEnv: strings.Fields(*hydraEnv), hold: *hold}
	var err error
	if cfg.shapes, err = parseShapes(*shapes); err != nil {
		return config{}, err
	}
	if cfg.contenders, err = selectContenders(*names); err != nil {
		return config{}, err
	}
	if cfg.rounds < 1 || cfg.warmup < 0 {
		return config{}, fmt.Errorf("-rounds %d -warmup %d: want at least one counted round", cfg.rounds, cfg.warmup)
	}
	return cfg, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return n
	}
	return def
}

func defaultToolsDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir() // an empty home leaves a relative path that fails clearly
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "hydra", "bin")
}

// run sets everything up, measures, reports, and tears down.
func run(ctx context.Context, cfg config) (err error) {
	started := time.Now()
	b, err := setup(ctx, cfg)
	if b != nil {
		defer func() { err = errors.Join(err, b.close()) }()
	}
	if err != nil {
		return err
	}
	if cfg.hold {
		b.printHold(os.Stdout)
		<-ctx.Done()
		return nil
	}
	samples, err := b.measureAll(ctx)
	if err != nil {
		return err
	}
	rep := newReport(cfg, samples, b.machine+"; hydra built from "+b.revision, b.scratch.how, time.Since(started))
	return rep.write(os.Stdout, cfg.outDir)
}
