package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/internal/benchenv"
)

// The download goals (docs/benchmarks.md, "Download benchmark"), checked for hydra on every shape.
const (
	goalRatio     = 1.1   // hydra's MB/s over the best other contender's
	goalCPUPerGB  = 0.6   // client CPU-s per GB, full verification
	goalPeakRSSMB = 256.0 // MiB, whatever the size
)

// row is the medians of one contender on one shape.
type row struct {
	Shape          string  `json:"shape"`
	Contender      string  `json:"contender"`
	Runs           int     `json:"runs"`
	MBps           float64 `json:"mbps"`
	MinMBps        float64 `json:"minMBps"`
	MaxMBps        float64 `json:"maxMBps"`
	CPUPerGB       float64 `json:"cpuSecondsPerGB"`
	RSSMiB         float64 `json:"peakRSSMiB"`
	MaxRSSMiB      float64 `json:"maxPeakRSSMiB"` // the worst run
	ServerCPUPerGB float64 `json:"minioCPUSecondsPerGB"`
}

// verdict compares hydra with the fastest other contender on one shape.
type verdict struct {
	Shape string  `json:"shape"`
	Hydra row     `json:"hydra"`
	Best  row     `json:"bestOther"`
	Ratio float64 `json:"ratio"`
	// Paired is the median over rounds of hydra's MB/s over the best
	// contender's in the same round: the load of a shared machine drifts
	// slowly, so runs next to each other compare more fairly.
	Paired float64 `json:"pairedRatio"`
	Speed  bool    `json:"speedGoalMet"`
	CPU    bool    `json:"cpuGoalMet"`
	RSS    bool    `json:"rssGoalMet"`
}

// report is everything a run writes.
type report struct {
	Machine    string        `json:"machine"`
	Scratch    string        `json:"scratch"`
	Shapes     []string      `json:"shapes"`
	Contenders []string      `json:"contenders"`
	Rounds     int           `json:"rounds"`
	Warmup     int           `json:"warmup"`
	Duration   time.Duration `json:"durationNs"`
	Rows       []row         `json:"rows"`
	Verdicts   []verdict     `json:"verdicts"`
	Samples    []sample      `json:"samples"`
	settings   []contender
}

func newReport(cfg config, samples []sample, machine, scratch string, took time.Duration) *report {
	r := &report{Machine: machine, Scratch: scratch, Rounds: cfg.rounds, Warmup: cfg.warmup,
		Duration: took.Round(time.Second), Samples: samples, settings: cfg.contenders}
	for _, s := range cfg.shapes {
		r.Shapes = append(r.Shapes, s.Name())
	}
	for _, c := range cfg.contenders {
		r.Contenders = append(r.Contenders, c.Name)
	}
	for _, s := range r.Shapes {
		var rows []row
		for _, c := range r.Contenders {
			rows = append(rows, aggregate(s, c, samples))
		}
		r.Rows = append(r.Rows, rows...)
		if v, ok := judge(s, rows); ok {
			v.Paired = pairedRatio(s, v.Best.Contender, samples)
			r.Verdicts = append(r.Verdicts, v)
		}
	}
	return r
}

// aggregate takes the medians of one contender's runs on one shape.
func aggregate(shapeName, contender string, samples []sample) row {
	var mbps, cpu, rss, srv []float64
	for _, s := range samples {
		if s.Shape == shapeName && s.Contender == contender {
			mbps = append(mbps, s.MBps())
			cpu = append(cpu, s.CPUPerGB())
			rss = append(rss, s.RSSMiB())
			srv = append(srv, s.ServerCPUPerGB())
		}
	}
	r := row{Shape: shapeName, Contender: contender, Runs: len(mbps)}
	if len(mbps) == 0 {
		return r
	}
	r.MBps, r.MinMBps, r.MaxMBps = benchenv.Median(mbps), slices.Min(mbps), slices.Max(mbps)
	r.CPUPerGB, r.RSSMiB, r.MaxRSSMiB = benchenv.Median(cpu), benchenv.Median(rss), slices.Max(rss)
	r.ServerCPUPerGB = benchenv.Median(srv)
	return r
}

// judge checks the goals on one shape; false when hydra or every other
// contender is missing from the run.
func judge(shapeName string, rows []row) (verdict, bool) {
	v := verdict{Shape: shapeName}
	var haveHydra, haveOther bool
	for _, r := range rows {
		switch {
		case r.Contender == hydraName:
			v.Hydra, haveHydra = r, true
		case !haveOther || r.MBps > v.Best.MBps:
			v.Best, haveOther = r, true
		}
	}
	if !haveHydra || !haveOther || v.Best.MBps == 0 {
		return verdict{}, false
	}
	v.Ratio = v.Hydra.MBps / v.Best.MBps
	v.Speed = v.Ratio >= goalRatio
	v.CPU = v.Hydra.CPUPerGB <= goalCPUPerGB
	v.RSS = v.Hydra.MaxRSSMiB <= goalPeakRSSMB
	return v, true
}

// pairedRatio is the median of hydra's MB/s over other's, round by round.
func pairedRatio(shapeName, other string, samples []sample) float64 {
	byRound := map[int]map[string]float64{}
	for _, s := range samples {
		if s.Shape != shapeName || (s.Contender != hydraName && s.Contender != other) {
			continue
		}
		if byRound[s.Round] == nil {
			byRound[s.Round] = map[string]float64{}
		}
		byRound[s.Round][s.Contender] = s.MBps()
	}
	var ratios []float64
	for _, m := range byRound {
		if h, o := m[hydraName], m[other]; h > 0 && o > 0 {
			ratios = append(ratios, h/o)
		}
	}
	if len(ratios) == 0 {
		return 0
	}
	return benchenv.Median(ratios)
}

// markdown renders the tables and the goals.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s. Data: %s.\n", r.Machine, r.Scratch)
	fmt.Fprintf(&b, "Medians of %d counted rounds after %d warm-up round(s), contenders interleaved; run took %v.\n\n",
		r.Rounds, r.Warmup, r.Duration)
	b.WriteString("| shape | contender | MB/s | MB/s min–max | client CPU-s/GB | peak RSS MiB (worst) | MinIO CPU-s/GB |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Rows {
		name := x.Contender
		if name == hydraName {
			name = "**" + name + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.0f–%.0f | %.2f | %.0f (%.0f) | %.2f |\n",
			x.Shape, name, x.MBps, x.MinMBps, x.MaxMBps, x.CPUPerGB, x.RSSMiB, x.MaxRSSMiB, x.ServerCPUPerGB)
	}
	fmt.Fprintf(&b, "\n| shape | hydra MB/s | best other | its MB/s | hydra / best | paired ¹ | ≥ %.1f× | hydra CPU-s/GB ≤ %.1f | hydra peak RSS ≤ %.0f MiB |\n",
		goalRatio, goalCPUPerGB, goalPeakRSSMB)
	b.WriteString("|---|--:|---|--:|--:|--:|:-:|:-:|:-:|\n")
	var speed, cpu, rss int
	for _, v := range r.Verdicts {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %.0f | %.3f× | %.3f× | %s | %s (%.2f) | %s (%.0f) |\n",
			v.Shape, v.Hydra.MBps, v.Best.Contender, v.Best.MBps, v.Ratio, v.Paired,
			mark(v.Speed), mark(v.CPU), v.Hydra.CPUPerGB, mark(v.RSS), v.Hydra.MaxRSSMiB)
		speed, cpu, rss = speed+btoi(v.Speed), cpu+btoi(v.CPU), rss+btoi(v.RSS)
	}
	n := len(r.Verdicts)
	fmt.Fprintf(&b, "\n¹ Median over rounds of hydra's MB/s over that contender's in the same round (the goal column uses the ratio of medians).\n")
	fmt.Fprintf(&b, "\nGoals met on: speed %d/%d shapes, CPU %d/%d, peak RSS %d/%d.\n\n", speed, n, cpu, n, rss, n)
	b.WriteString("| contender | settings | verifies |\n|---|---|---|\n")
	for _, c := range r.settings {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, c.Settings, c.Verifies)
	}
	return b.String()
}

func mark(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// write prints the Markdown to w and saves it, the JSON and the chart in
// dir.
func (r *report) write(w io.Writer, dir string) error {
	md := r.markdown()
	if _, err := io.WriteString(w, md); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	var png bytes.Buffer
	if err := drawChart(&png, r); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"results.md": []byte(md), "results.json": raw, "download.png": png.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "\nWritten to %s: results.md, results.json, download.png, logs/.\n", dir)
	return err
}
