package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hydra-csi/hydra/internal/benchenv"
)

// settle is the pause between the last node's registration and the
// measured phase: the startup burst of reports and downloads ends.
const settle = 5 * time.Second

// run builds the manager and runs the load on every store in turn.
func run(ctx context.Context, cfg config) (*report, error) {
	started := time.Now()
	out, err := filepath.Abs(cfg.outDir)
	if err != nil {
		return nil, err
	}
	logs, profiles := filepath.Join(out, "logs"), filepath.Join(out, "profiles")
	for _, dir := range []string{logs, profiles} {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(logs, 0o750); err != nil {
		return nil, err
	}
	if cfg.profile {
		if err := os.MkdirAll(profiles, 0o750); err != nil {
			return nil, err
		}
	}
	work, err := os.MkdirTemp("", "hydra-load-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(work) }() // a leftover temp dir is harmless
	if _, err := os.Stat(filepath.Join(cfg.toolsDir, "consul")); err != nil && contains(cfg.stores, storeConsul) {
		return nil, fmt.Errorf("consul is not in %s: run hack/tools.sh consul", cfg.toolsDir)
	}
	bin, rev, err := buildManager(ctx, cfg.goCmd, work, cfg.profile)
	if err != nil {
		return nil, err
	}
	rep := &report{Machine: benchenv.Machine(), Revision: rev, Config: cfg.describe()}
	for i, st := range cfg.stores {
		log.Printf("store %s: %d agents, %d channels, %.1f publishes/s for %v; load average %s", //nolint:gosec // G706: our own values
			st, cfg.agents, cfg.channels, cfg.publishRate(), cfg.duration, benchenv.LoadAverage())
		rng := rand.New(rand.NewPCG(cfg.seed, uint64(i))) //nolint:gosec // G404: a reproducible load, no secret
		res, err := runStore(ctx, cfg, st, bin, work, out, rng)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", st, err)
		}
		log.Print(res.summary()) //nolint:gosec // G706: our own values
		rep.Results = append(rep.Results, res)
	}
	rep.Took = time.Since(started).Round(time.Second)
	return rep, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// env is what one store's run has started; close stops it.
type env struct {
	consul  *consul
	manager *server
	url     string
	pprof   string // where the manager serves its profiles; "" without -profile
}

func startEnv(cfg config, storeName, bin, work, logs string) (*env, error) {
	e := &env{}
	var storeURL string
	switch storeName {
	case storeConsul:
		c, err := startConsul(filepath.Join(cfg.toolsDir, "consul"), filepath.Join(logs, "consul.log"), cfg.consulMaxConns)
		if err != nil {
			return nil, err
		}
		e.consul = c
		storeURL = "consul://" + c.addr + "/hydra-load"
	default:
		storeURL = "bolt://" + filepath.Join(work, "state.db")
		if err := os.Remove(filepath.Join(work, "state.db")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if cfg.profile {
		ports, err := freePorts(1)
		if err != nil {
			e.close()
			return nil, err
		}
		e.pprof = fmt.Sprintf("127.0.0.1:%d", ports[0])
	}
	m, url, err := startManager(bin, storeURL, filepath.Join(logs, "manager-"+storeName+".log"), e.pprof)
	if err != nil {
		e.close()
		return nil, err
	}
	e.manager, e.url = m, url
	return e, nil
}

func (e *env) close() {
	if e.manager != nil {
		e.manager.stop()
	}
	if e.consul != nil {
		e.consul.stop()
	}
}

// runStore is one store's run: start, set up, ramp the fleet up, publish
// for the duration, drain, stop, and compute the results.
func runStore(ctx context.Context, cfg config, storeName, bin, work, out string, rng *rand.Rand) (*result, error) {
	e, err := startEnv(cfg, storeName, bin, work, filepath.Join(out, "logs"))
	if err != nil {
		return nil, err
	}
	defer e.close()
	rec := newRecorder()
	cl, transport, err := newClient(e.url, 2*cfg.agents+maxPublishing+16)
	if err != nil {
		return nil, err
	}
	defer transport.CloseIdleConnections()
	consulPID, consulAddr := 0, ""
	if e.consul != nil {
		consulPID, consulAddr = e.consul.pid(), e.consul.addr
	}
	smp := newSampler(e.manager.pid(), consulPID, consulAddr, rec)
	sctx, stopSampler := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { smp.run(sctx) })
	defer bg.Wait()
	defer stopSampler()

	pub := newPublisher(cl, rec, cfg.channels)
	initial, err := pub.setup(ctx)
	if err != nil {
		return nil, err
	}
	registered := make(chan struct{}, cfg.agents)
	fl := newFleet(cfg, cl, rec, pub.channels, initial, rng, func() { registered <- struct{}{} })
	fctx, stopFleet := context.WithCancel(ctx)
	defer fl.wait()
	defer stopFleet()
	t := time.Now()
	if err := fl.start(fctx, cfg.ramp, registered); err != nil {
		return nil, err
	}
	log.Printf("  %d nodes registered and polling after %v", cfg.agents, time.Since(t).Round(time.Millisecond))
	sleep(ctx, settle)

	start, loadStart := time.Now(), benchenv.LoadAverage()
	smp.setOrigin(start)
	statusCtx, stopStatus := context.WithCancel(ctx)
	statusRng := rand.New(rand.NewPCG(rng.Uint64(), 0)) //nolint:gosec // G404: a reproducible load
	bg.Go(func() { pub.readStatus(statusCtx, cfg.statusInterval, statusRng) })
	if e.pprof != "" {
		bg.Go(func() { profileManager(statusCtx, e.pprof, storeName, filepath.Join(out, "profiles"), cfg.duration) })
	}
	pub.run(ctx, cfg.duration, cfg.publishRate(), rng)
	stopStatus()
	// The measured phase is the publish schedule's; publishes still in
	// flight at its end were waited for, and count.
	end, loadEnd := start.Add(cfg.duration), benchenv.LoadAverage()
	pubs := pub.publications()
	drained := fl.drain(ctx, pubs, cfg.drain)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	smp.sample(ctx) // the final point, with the fleet still connected
	rec.stop()
	res := newResult(cfg, storeName, window{start, end, drained}, rec, fl.fanout(pubs), len(pubs), smp.timeline())
	res.LoadStart, res.LoadEnd = loadStart, loadEnd
	return res, nil
}

// window is the measured phase and the drain after it.
type window struct {
	start, end time.Time
	drained    time.Duration
}
