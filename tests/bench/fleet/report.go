//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/internal/benchenv"
)

// The goals of peer distribution (docs/benchmarks.md, "Fleet benchmark"),
// checked on the largest fleet with peers on.
const (
	goalLastRatio    = 1.5 // the last node's time over one node's alone
	goalOriginCopies = 1.2 // origin bytes over the release's
)

// sample is one fleet run.
type sample struct {
	Nodes int   `json:"nodes"`
	Peers bool  `json:"peers"`
	Round int   `json:"round"`
	Bytes int64 `json:"releaseBytes"`
	// LastSec is the time from the stage calls to the last node's
	// answer: the release installed everywhere.
	LastSec     float64 `json:"lastInstalledSeconds"`
	OriginBytes int64   `json:"originBytes"`
	// LoadBefore and LoadAfter are /proc/loadavg around the run: the
	// machine is shared, and a drifting load shows here.
	LoadBefore string `json:"loadBefore"`
	LoadAfter  string `json:"loadAfter"`
}

func (s sample) mode() string {
	if s.Peers {
		return "on"
	}
	return "off"
}

func (s sample) name() string { return fmt.Sprintf("n%d-peers-%s-r%d", s.Nodes, s.mode(), s.Round) }

func (s sample) copies() float64 { return float64(s.OriginBytes) / float64(s.Bytes) }

func (s sample) line() string {
	return fmt.Sprintf("%d nodes, peers %s, round %d: last installed after %.1f s, origin %.2f copies (load %s → %s)",
		s.Nodes, s.mode(), s.Round, s.LastSec, s.copies(), s.LoadBefore, s.LoadAfter)
}

// row is the medians of one fleet size and mode.
type row struct {
	Nodes   int     `json:"nodes"`
	Peers   bool    `json:"peers"`
	Runs    int     `json:"runs"`
	LastSec float64 `json:"lastInstalledSeconds"`
	// VsOne is LastSec over the one-node fleet's of the same mode.
	VsOne  float64 `json:"vsOneNode"`
	Copies float64 `json:"originCopies"`
}

// report is everything a run writes.
type report struct {
	Machine    string        `json:"machine"`
	NodeRate   int64         `json:"nodeRate"`
	OriginRate int64         `json:"originRate"`
	Duration   time.Duration `json:"durationNs"`
	Rows       []row         `json:"rows"`
	Samples    []sample      `json:"samples"`
}

func newReport(cfg config, samples []sample, machine string, took time.Duration) *report {
	r := &report{Machine: machine, NodeRate: cfg.nodeRate, OriginRate: cfg.originRate, Duration: took.Round(time.Second), Samples: samples}
	for _, peers := range cfg.peers {
		var one float64
		for _, n := range cfg.nodes {
			var last, copies []float64
			for _, s := range samples {
				if s.Nodes == n && s.Peers == peers {
					last, copies = append(last, s.LastSec), append(copies, s.copies())
				}
			}
			if len(last) == 0 {
				continue
			}
			x := row{Nodes: n, Peers: peers, Runs: len(last), LastSec: benchenv.Median(last), Copies: benchenv.Median(copies)}
			if n == 1 {
				one = x.LastSec
			}
			if one > 0 {
				x.VsOne = x.LastSec / one
			}
			r.Rows = append(r.Rows, x)
		}
	}
	return r
}

// markdown renders the table and the goals.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s. Links: %s per node each way, origin %s. Run took %v.\n\n",
		r.Machine, rate(r.NodeRate), rate(r.OriginRate), r.Duration)
	b.WriteString("| nodes | peers | runs | last node installed (s) | × one node | origin copies |\n|--:|:-:|--:|--:|--:|--:|\n")
	for _, x := range r.Rows {
		vs := "–"
		if x.VsOne > 0 {
			vs = fmt.Sprintf("%.2f×", x.VsOne)
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %.1f | %s | %.2f |\n", x.Nodes, map[bool]string{false: "off", true: "on"}[x.Peers], x.Runs, x.LastSec, vs, x.Copies)
	}
	fmt.Fprintf(&b, "\nGoals with peers on, largest fleet: last node within %.1f× one node alone, origin ≤ %.1f copies: %s.\n",
		goalLastRatio, goalOriginCopies, r.verdict())
	return b.String()
}

// verdict checks the goals on the largest fleet run with peers on.
func (r *report) verdict() string {
	var big *row
	for i, x := range r.Rows {
		if x.Peers && x.Nodes > 1 && (big == nil || x.Nodes > big.Nodes) {
			big = &r.Rows[i]
		}
	}
	if big == nil || big.VsOne == 0 {
		return "not measured (needs -peers on with 1 and more nodes)"
	}
	return fmt.Sprintf("%d nodes: %.2f× (%s), %.2f copies (%s)", big.Nodes, big.VsOne, mark(big.VsOne <= goalLastRatio),
		big.Copies, mark(big.Copies <= goalOriginCopies))
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func rate(r int64) string {
	if r == 0 {
		return "unshaped"
	}
	return fmt.Sprintf("%.0f MB/s", float64(r)/1e6)
}

// write prints the Markdown to w and saves it and the JSON in dir.
func (r *report) write(w io.Writer, dir string) error {
	md := r.markdown()
	if _, err := io.WriteString(w, md); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"results.md": []byte(md), "results.json": raw} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "\nWritten to %s: results.md, results.json and a log per run.\n", dir)
	return err
}
