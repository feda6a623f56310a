package main

import (
	"bytes"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samplesOf makes one run per MB/s value; 1 GB each, so CPU seconds are
// CPU-s/GB.
func samplesOf(shapeName, contender string, cpu float64, rssKiB int64, mbps ...float64) []sample {
	var out []sample
	for i, v := range mbps {
		out = append(out, sample{Shape: shapeName, Contender: contender, Round: i + 1, Bytes: 1e9,
			WallSec: 1e3 / v, UserSec: cpu, MaxRSSKiB: rssKiB})
	}
	return out
}

func testReport(t *testing.T) *report {
	t.Helper()
	var samples []sample
	samples = append(samples, samplesOf("1x2GiB", hydraName, 0.5, 100<<10, 800, 900, 1000)...)
	samples = append(samples, samplesOf("1x2GiB", "rclone", 2, 80<<10, 600, 700, 800)...)
	samples = append(samples, samplesOf("1x2GiB", "sdk", 1, 60<<10, 100, 100, 100)...)
	samples = append(samples, samplesOf("10x1MiB", hydraName, 0.7, 300<<10, 100, 100, 100)...)
	samples = append(samples, samplesOf("10x1MiB", "rclone", 2, 80<<10, 95, 95, 95)...)
	samples = append(samples, samplesOf("10x1MiB", "sdk", 1, 60<<10, 50, 50, 50)...)
	cfg := config{shapes: []shape{{1, 2 << 30}, {10, 1 << 20}}, rounds: 3, warmup: 1}
	for _, c := range contenders {
		if c.Name == hydraName || c.Name == "rclone" || c.Name == "sdk" {
			cfg.contenders = append(cfg.contenders, c)
		}
	}
	return newReport(cfg, samples, "test machine", "tmpfs", 0)
}

func TestReportVerdicts(t *testing.T) {
	r := testReport(t)
	if len(r.Verdicts) != 2 {
		t.Fatalf("%d verdicts, want 2", len(r.Verdicts))
	}
	big, small := r.Verdicts[0], r.Verdicts[1]
	// 900 MB/s against rclone's 700: 1.29×, all goals met.
	if big.Best.Contender != "rclone" || big.Ratio < 1.28 || big.Ratio > 1.29 || !big.Speed || !big.CPU || !big.RSS {
		t.Errorf("1x2GiB verdict %+v", big)
	}
	// 100 against 95 is 1.05×: too slow; 0.7 CPU-s/GB and 300 MiB miss too.
	if small.Speed || small.CPU || small.RSS {
		t.Errorf("10x1MiB verdict %+v: want every goal missed", small)
	}
	md := r.markdown()
	for _, want := range []string{
		"| 1x2GiB | **hydra** | 900 | 800–1000 | 0.50 | 100 (100) |",
		"| 1x2GiB | 900 | rclone | 700 | 1.286× | 1.286× | yes | yes (0.50) | yes (100) |",
		"| 10x1MiB | 100 | rclone | 95 | 1.053× | 1.053× | **no** | **no** (0.70) | **no** (300) |",
		"Goals met on: speed 1/2 shapes, CPU 1/2, peak RSS 1/2.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReportWrite(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := testReport(t).write(&out, dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "download.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != chartWidth {
		t.Fatalf("download.png: %+v, %v", cfg, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !strings.HasPrefix(out.String(), string(md)) {
		t.Fatalf("results.md (%v) is not what was printed", err)
	}
}

func TestPatternSeeks(t *testing.T) {
	s := shape{2, 3*patternBlock + 17}
	whole, err := io.ReadAll(newPattern(s, 1))
	if err != nil || int64(len(whole)) != s.size {
		t.Fatalf("read %d bytes (%v), want %d", len(whole), err, s.size)
	}
	other, _ := io.ReadAll(newPattern(s, 0))
	if bytes.Equal(whole, other) {
		t.Fatal("objects 0 and 1 have the same content")
	}
	p := newPattern(s, 1)
	for _, off := range []int64{s.size - 5, patternBlock - 1, 0} {
		if _, err := p.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(p, got); err != nil || !bytes.Equal(got, whole[off:off+5]) {
			t.Fatalf("at %d: %x (%v), want %x", off, got, err, whole[off:off+5])
		}
	}
}

func TestCheckContent(t *testing.T) {
	s := shape{1, 3 << 20}
	path := filepath.Join(t.TempDir(), fileName(0))
	data, _ := io.ReadAll(newPattern(s, 0))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkContent(path, newPattern(s, 0)); err != nil {
		t.Fatalf("intact file: %v", err)
	}
	data[len(data)-1] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkContent(path, newPattern(s, 0)); err == nil {
		t.Fatal("a flipped last byte went unnoticed")
	}
}
