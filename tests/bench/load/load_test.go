package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSmoke runs the whole harness at a tiny scale on bbolt: the real
// manager binary, 20 nodes, 3 channels, 5 s of publishing. It checks that
// every metric has samples and that the files (profiles included) are
// written; the numbers themselves are the benchmark's to report, never the
// test's to judge.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs hydra-manager")
	}
	out := t.TempDir()
	cfg := config{stores: []string{storeBolt}, agents: 20, channels: 3, perNode: 2,
		duration: 5 * time.Second, publishInterval: time.Second, downloadTime: 200 * time.Millisecond,
		statusInterval: 250 * time.Millisecond, ramp: time.Second, drain: 15 * time.Second,
		seed: 1, profile: true, outDir: out, toolsDir: defaultToolsDir(), goCmd: "go"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	for _, k := range requestKinds {
		if r.Latency[k].N == 0 {
			t.Errorf("no %s latency samples", k)
		}
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"publishes", r.Publishes > 0},
		{"fan-out samples", r.Fanout.N > 0},
		{"fan-out windows", len(r.Windows) > 0},
		{"store writes", r.StoreWritesPerSec > 0},
		{"long-poll answers", r.AnswersPerSec > 0},
		{"manager RSS", r.RSSPeak > 0 && r.RSSFinal > 0},
		{"manager CPU", r.ManagerCPU > 0},
		{"load generator CPU", r.HarnessCPU > 0},
		{"timeline", len(r.Timeline) > 0},
		{"no errors", r.ErrorsTotal == 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: missing or wrong in %+v", c.what, *r)
		}
	}
	var stdout bytes.Buffer
	if err := rep.write(&stdout, out); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, out)
	for _, name := range []string{"bbolt-cpu.pprof", "bbolt-goroutines.txt"} {
		if fi, err := os.Stat(filepath.Join(out, "profiles", name)); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
}

// checkFiles checks that a run's results decode.
func checkFiles(t *testing.T, dir string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back report
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Results) == 0 {
		t.Fatalf("results.json: %d results, %v", len(back.Results), err)
	}
	f, err := os.Open(filepath.Join(dir, "load.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if cfg, err := png.DecodeConfig(f); err != nil || cfg.Width != chartWidth {
		t.Fatalf("load.png: %+v, %v", cfg, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "results.md")); err != nil {
		t.Fatal(err)
	}
}
