//go:build linux

// Command fleet is the fleet benchmark of peer distribution (`make
// bench`): for each fleet size N and each peer mode (off: every node
// fetches from the origin; on: nodes fetch from each other), it starts a
// fleet of N nodes on one machine (internal/fleet: network namespaces,
// links shaped with tc, MinIO behind a counting proxy, hydra-manager),
// publishes one release of mixed files, stages it on every node at once and
// records the time until the last node has it installed and the bytes the
// origin served. Every node's store is then checked byte for byte.
//
// It needs root, iproute2 and the tools cache's MinIO. Configuration is by
// flag, each with an environment default (see -help):
//
//	BENCH_FLEET_NODES=1,2 BENCH_FLEET_PEERS=off go run ./tests/bench/fleet
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/benchenv"
	"github.com/hydra-csi/hydra/internal/fleet"
)

// config is what a run measures and where it writes.
type config struct {
	nodes      []int
	peers      []bool
	size       int64
	nodeRate   int64
	originRate int64
	uploadRate string
	rounds     int
	outDir     string
	goCmd      string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := parseAndRun(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseAndRun(ctx context.Context) error {
	// internal/testenv asks testing.Short(), which needs the testing
	// flags registered and parsed: the benchmark's own go on the same set.
	testing.Init()
	cfg, err := parseConfig(flag.CommandLine, os.Args[1:])
	if err != nil {
		return err
	}
	return run(ctx, cfg)
}

func parseConfig(fs *flag.FlagSet, args []string) (config, error) {
	nodes := fs.String("nodes", envOr("BENCH_FLEET_NODES", "1,2,4,8"), "fleet sizes, comma-separated (env BENCH_FLEET_NODES)")
	peers := fs.String("peers", envOr("BENCH_FLEET_PEERS", "off,on"), "peer modes to run, comma-separated: off (origin only), on (--peer-listen on every node) (env BENCH_FLEET_PEERS)")
	size := fs.Int64("size", envInt64("BENCH_FLEET_SIZE", 256<<20), "bytes in the release (env BENCH_FLEET_SIZE)")
	nodeRate := fs.Int64("node-rate", envInt64("BENCH_FLEET_NODE_RATE", 40e6), "each node's link, bytes/s each way (env BENCH_FLEET_NODE_RATE)")
	originRate := fs.Int64("origin-rate", envInt64("BENCH_FLEET_ORIGIN_RATE", 40e6), "the origin's link into the fleet, bytes/s; 0 unshaped (env BENCH_FLEET_ORIGIN_RATE)")
	uploadRate := fs.String("peer-upload-rate", envOr("BENCH_FLEET_PEER_UPLOAD_RATE", ""), "--peer-upload-rate of every node with peers on; empty keeps hydra-csi's default (env BENCH_FLEET_PEER_UPLOAD_RATE)")
	rounds := fs.Int("rounds", int(envInt64("BENCH_FLEET_ROUNDS", 1)), "runs of each fleet size and mode (env BENCH_FLEET_ROUNDS)")
	out := fs.String("out", filepath.Join(envOr("BENCH_OUT", "_output/bench"), "fleet"), "results directory (env BENCH_OUT, then /fleet)")
	goCmd := fs.String("go", envOr("GO", "go"), "the go command that builds hydra (env GO)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{size: *size, nodeRate: *nodeRate, originRate: *originRate, uploadRate: *uploadRate,
		rounds: *rounds, outDir: *out, goCmd: *goCmd}
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > fleet.MaxNodes {
			return config{}, fmt.Errorf("-nodes %q: %q is not a fleet size from 1 to %d", *nodes, s, fleet.MaxNodes)
		}
		cfg.nodes = append(cfg.nodes, n)
	}
	for _, s := range strings.Split(*peers, ",") {
		switch strings.TrimSpace(s) {
		case "off":
			cfg.peers = append(cfg.peers, false)
		case "on":
			cfg.peers = append(cfg.peers, true)
		default:
			return config{}, fmt.Errorf("-peers %q: %q is neither off nor on", *peers, s)
		}
	}
	switch {
	case cfg.size < 1:
		return config{}, fmt.Errorf("-size %d: must be positive", cfg.size)
	case cfg.nodeRate < 0 || cfg.originRate < 0:
		return config{}, fmt.Errorf("-node-rate %d, -origin-rate %d: must not be negative", cfg.nodeRate, cfg.originRate)
	case cfg.rounds < 1:
		return config{}, fmt.Errorf("-rounds %d: want at least one", cfg.rounds)
	}
	return cfg, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt64(key string, def int64) int64 {
	if n, err := strconv.ParseInt(os.Getenv(key), 10, 64); err == nil {
		return n
	}
	return def
}

// run builds the binaries, measures every fleet size and mode, and writes
// the report.
func run(ctx context.Context, cfg config) error {
	started := time.Now()
	if err := os.MkdirAll(cfg.outDir, 0o750); err != nil {
		return err
	}
	binDir, err := os.MkdirTemp("", "hydra-fleet-bench-bin-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(binDir) }()
	bins, revision, err := build(ctx, cfg.goCmd, binDir)
	if err != nil {
		return err
	}
	var samples []sample
	for round := range cfg.rounds {
		for _, peers := range cfg.peers {
			for _, n := range cfg.nodes {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s, err := measure(ctx, cfg, bins, n, peers, round)
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "bench: %s\n", s.line())
				samples = append(samples, s)
			}
		}
	}
	rep := newReport(cfg, samples, benchenv.Machine()+"; hydra built from "+revision, time.Since(started))
	return rep.write(os.Stdout, cfg.outDir)
}

// build compiles hydra-manager and hydra-csi from the checkout.
func build(ctx context.Context, goCmd, dir string) (fleet.Binaries, string, error) {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", dir+"/", "./cmd/hydra-manager", "./cmd/hydra-csi") //nolint:gosec // G204: the go command the Makefile names
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fleet.Binaries{}, "", fmt.Errorf("build the binaries (run from the repository root): %w", err)
	}
	// The tree may hold uncommitted changes; "-dirty" says so in the report.
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	revision := strings.TrimSpace(string(out))
	if err != nil || revision == "" {
		revision = "unknown"
	}
	return fleet.Binaries{Manager: filepath.Join(dir, "hydra-manager"), Plugin: filepath.Join(dir, "hydra-csi")}, revision, nil
}

// measure runs one fleet: start, publish, stage everywhere, check, tear
// down. The clock runs from the stage calls to the last node's answer.
func measure(ctx context.Context, cfg config, bins fleet.Binaries, n int, peers bool, round int) (sample, error) {
	s := sample{Nodes: n, Peers: peers, Round: round, Bytes: cfg.size, LoadBefore: benchenv.LoadAverage()}
	logPath := filepath.Join(cfg.outDir, fmt.Sprintf("%s.log", s.name()))
	logf, err := os.Create(logPath)
	if err != nil {
		return s, err
	}
	defer func() { _ = logf.Close() }() // the log is for reading after a failure; a lost line changes no result
	opts := fleet.Options{
		NetOptions: fleet.NetOptions{Nodes: n, NodeRate: cfg.nodeRate, OriginRate: cfg.originRate},
		Binaries:   bins,
	}
	if peers {
		opts.NodeArgs = fleet.PeerArgs(cfg.uploadRate)
	}
	failures := runScenario(ctx, s.name(), logf, func(t *scenarioT) {
		f := fleet.Start(t, opts)
		r := fleet.MixedRelease(uint64(round)+1, cfg.size) //nolint:gosec // G115: round counts from 0
		f.Publish(t, "bench", "v1", r)
		before := f.OriginBytes()
		took := f.StageAll(t, 30*time.Minute, "bench")
		s.OriginBytes = f.OriginBytes() - before
		for _, d := range took {
			s.LastSec = max(s.LastSec, d.Seconds())
		}
		s.Bytes = r.Bytes
		f.WaitReady(t, time.Minute, "bench", "v1")
		f.VerifyStores(t, "bench", "v1", r)
	})
	s.LoadAfter = benchenv.LoadAverage()
	if len(failures) > 0 {
		return s, fmt.Errorf("%s failed (log %s): %s", s.name(), logPath, strings.Join(failures, "; "))
	}
	return s, nil
}
