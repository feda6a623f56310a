// Command load is the manager's load benchmark (`make bench`): the real
// hydra-manager binary, first on a Consul dev agent and then on bbolt,
// serving a fleet of simulated node agents while a publisher keeps
// releasing to many channels.
//
// Each simulated node is what pkg/agent is to the manager, minus the
// bytes: it reports its status (releases ready or downloading, one view
// per channel it serves), long-polls its desired state, fetches the
// manifest of every new head of its channels, "downloads" it for a while,
// flips its views when the manager asks, and forgets old releases. All
// nodes share one HTTP transport.
//
// Per store it measures, client-side, the latency of every request kind;
// the long-poll fan-out (from a publish's response to each serving node's
// long-poll answer carrying the new head); Consul's own write counters;
// and the manager's RSS and CPU from /proc. It prints a summary and
// writes results.md, results.json and load.png to the results directory.
//
//	go run ./tests/bench/load -agents 50 -channels 5 -duration 20s
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

// Store names, as -stores takes them.
const (
	storeConsul = "consul"
	storeBolt   = "bbolt"
)

// config is what a run simulates and where it writes.
type config struct {
	stores          []string
	agents          int
	channels        int
	perNode         int // channels each node serves
	duration        time.Duration
	publishInterval time.Duration // per channel, on average
	downloadTime    time.Duration // a simulated node's time to fetch a release
	statusInterval  time.Duration // between `hydra status` reads; 0 for none
	ramp            time.Duration // over which the nodes start
	drain           time.Duration // longest wait for the last publishes to fan out
	seed            uint64
	consulMaxConns  int // Consul's limits.http_max_conns_per_client; 0 keeps its default (200)
	profile         bool
	outDir          string
	toolsDir        string
	goCmd           string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := parseAndRun(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func parseAndRun(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	rep, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	return rep.write(os.Stdout, cfg.outDir)
}

func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	stores := fs.String("stores", envOr("BENCH_LOAD_STORES", storeConsul+","+storeBolt), "stores to run on, in order: consul, bbolt (env BENCH_LOAD_STORES)")
	agents := fs.Int("agents", envInt("BENCH_LOAD_AGENTS", 1000), "simulated node agents (env BENCH_LOAD_AGENTS)")
	channels := fs.Int("channels", envInt("BENCH_LOAD_CHANNELS", 100), "channels (env BENCH_LOAD_CHANNELS)")
	perNode := fs.Int("channels-per-node", 3, "channels each node serves, one view each, drawn at random")
	duration := fs.Duration("duration", envDuration("BENCH_LOAD_DURATION", 3*time.Minute), "measured time per store (env BENCH_LOAD_DURATION)")
	interval := fs.Duration("publish-interval", envDuration("BENCH_LOAD_PUBLISH_INTERVAL", 5*time.Second),
		"mean time between publishes to one channel; all channels together publish channels/interval per second (env BENCH_LOAD_PUBLISH_INTERVAL)")
	download := fs.Duration("download-time", 2*time.Second, "how long a simulated node takes to download a release")
	status := fs.Duration("status-interval", time.Second, "time between reads of a random channel's status, as `hydra status` does; 0 for none")
	ramp := fs.Duration("ramp", 10*time.Second, "time over which the nodes start")
	drain := fs.Duration("drain", 30*time.Second, "longest wait, after the last publish, for nodes to see it")
	seed := fs.Uint64("seed", 1, "seed of the channel choices and publish times")
	consulMaxConns := fs.Int("consul-max-conns", envInt("BENCH_LOAD_CONSUL_MAX_CONNS", 0),
		"Consul's limits.http_max_conns_per_client (the manager's connections to its agent); 0 keeps Consul's default, 200 (env BENCH_LOAD_CONSUL_MAX_CONNS)")
	profile := fs.Bool("profile", os.Getenv("BENCH_PROFILE") != "", "build the manager with net/http/pprof and save a CPU profile and a goroutine dump per store in OUT/profiles (env BENCH_PROFILE=1)")
	out := fs.String("out", defaultOut(), "results directory (env BENCH_OUT: OUT/load)")
	tools := fs.String("tools", envOr("HYDRA_TOOLS_DIR", defaultToolsDir()), "where hack/tools.sh put consul (env HYDRA_TOOLS_DIR)")
	goCmd := fs.String("go", envOr("GO", "go"), "the go command that builds hydra-manager (env GO)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	cfg := config{agents: *agents, channels: *channels, perNode: *perNode, duration: *duration,
		publishInterval: *interval, downloadTime: *download, statusInterval: *status, ramp: *ramp,
		drain: *drain, seed: *seed, consulMaxConns: *consulMaxConns, profile: *profile, outDir: *out, toolsDir: *tools, goCmd: *goCmd}
	for s := range strings.SplitSeq(*stores, ",") {
		switch s = strings.TrimSpace(s); s {
		case storeConsul, storeBolt:
			cfg.stores = append(cfg.stores, s)
		default:
			return config{}, fmt.Errorf("-stores: unknown store %q (want consul, bbolt)", s)
		}
	}
	return cfg, cfg.validate()
}

func (c config) validate() error {
	switch {
	case len(c.stores) == 0:
		return errors.New("-stores: none given")
	case c.agents < 1 || c.channels < 1:
		return fmt.Errorf("-agents %d -channels %d: want at least one of each", c.agents, c.channels)
	case c.perNode < 1 || c.perNode > c.channels:
		return fmt.Errorf("-channels-per-node %d: want 1 to -channels (%d)", c.perNode, c.channels)
	case c.duration <= 0 || c.publishInterval <= 0:
		return fmt.Errorf("-duration %v -publish-interval %v: want both positive", c.duration, c.publishInterval)
	case c.downloadTime < 0 || c.statusInterval < 0 || c.ramp < 0 || c.drain < 0 || c.consulMaxConns < 0:
		return errors.New("-download-time, -status-interval, -ramp, -drain and -consul-max-conns must not be negative")
	}
	return nil
}

// publishRate is the publishes per second of all channels together.
func (c config) publishRate() float64 {
	return float64(c.channels) / c.publishInterval.Seconds()
}

func defaultOut() string {
	if out := os.Getenv("BENCH_OUT"); out != "" {
		return filepath.Join(out, "load") // beside the download benchmark's files
	}
	return filepath.Join("_output", "bench", "load")
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

func envDuration(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(key)); err == nil {
		return d
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
