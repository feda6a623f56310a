package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// report is everything a run writes.
type report struct {
	Machine  string        `json:"machine"`
	Revision string        `json:"revision"`
	Config   string        `json:"config"`
	Took     time.Duration `json:"tookNs"`
	Results  []*result     `json:"results"`
}

// describe is one line on what was simulated.
func (c config) describe() string {
	s := fmt.Sprintf("%d node agents, each serving %d of %d channels; one publish per channel every %v on average (%.1f/s in all, Poisson) for %v; downloads take %v; a channel status read every %v",
		c.agents, c.perNode, c.channels, c.publishInterval, c.publishRate(), c.duration, c.downloadTime, c.statusInterval)
	if c.consulMaxConns > 0 && contains(c.stores, storeConsul) {
		s += fmt.Sprintf("; Consul's http_max_conns_per_client raised to %d", c.consulMaxConns)
	}
	return s
}

// markdown renders the two tables.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s; hydra-manager built from %s.\n", r.Machine, r.Revision)
	fmt.Fprintf(&b, "Load: %s. Run took %v.\n\n", r.Config, r.Took)
	b.WriteString("| store | publishes/s (target) | publish p50 / p99 ms | report p50 / p99 ms | manifest p50 / p99 ms | status p50 / p99 ms | fan-out p50 / p99 / max ms | fan-out samples | superseded / unseen | errors |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Results {
		fmt.Fprintf(&b, "| %s | %.1f (%.1f) | %s | %s | %s | %s | %s / %s | %d | %d / %d | %s |\n",
			x.Store, x.PublishRate, x.TargetRate, pair(x.Latency[kindPublish]), pair(x.Latency[kindReport]),
			pair(x.Latency[kindManifest]), pair(x.Latency[kindStatus]), pair(x.Fanout), num(x.Fanout.Max),
			x.Fanout.N, x.Superseded, x.Unseen, errorCell(x))
	}
	b.WriteString("\n| store | store writes/s ¹ | Consul KV writes/s ² | Raft applies/s ² | long-poll answers/s ³ | manager RSS MiB start / peak / final | manager CPU, cores | Consul CPU, cores | load generator CPU, cores | load average ⁴ |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, x := range r.Results {
		consulW, raft, consulCPU := "—", "—", "—"
		if x.Store == storeConsul {
			consulW, raft = fmt.Sprintf("%.0f", x.ConsulWritesPerSec), fmt.Sprintf("%.0f", x.RaftPerSec)
			consulCPU = fmt.Sprintf("%.2f", x.cores(x.ConsulCPU))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.0f | %.0f / %.0f / %.0f | %.2f | %s | %.2f | %s → %s |\n",
			x.Store, x.StoreWritesPerSec, consulW, raft, x.AnswersPerSec, x.RSSStart, x.RSSPeak, x.RSSFinal,
			x.cores(x.ManagerCPU), consulCPU, x.cores(x.HarnessCPU), firstField(x.LoadStart), firstField(x.LoadEnd))
	}
	b.WriteString("\n¹ Publishes and node reports the manager accepted per second, counted by the load generator. Node reports that arrive together share one store transaction.\n")
	b.WriteString("² From Consul's own telemetry (`/v1/agent/metrics`): KV writes are `consul.txn.apply` + `consul.kvs.apply`, Raft applies `consul.raft.apply` (Consul's own catalog and session writes included).\n")
	b.WriteString("³ Long-poll answers that carried a new index, all nodes together: the manager's fan-out work.\n")
	b.WriteString("⁴ The machine's 1-minute load average at the start and the end of the measured phase (2 cores; other work included).\n")
	return b.String()
}

// pair is "p50 / p99" of a distribution, or "—" without samples.
func pair(d dist) string {
	if d.N == 0 {
		return "—"
	}
	return num(d.P50) + " / " + num(d.P99)
}

// num prints milliseconds with about three significant digits.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func errorCell(x *result) string {
	if x.ErrorsTotal == 0 {
		return "0"
	}
	var parts []string
	for _, k := range append(requestKinds, kindLongPoll) {
		if n := x.Errors[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	return fmt.Sprintf("%d (%s)", x.ErrorsTotal, strings.Join(parts, ", "))
}

// write prints the Markdown and the summaries to w and saves the
// Markdown, the JSON and the chart in dir.
func (r *report) write(w io.Writer, dir string) error {
	md := r.markdown()
	if _, err := io.WriteString(w, "\n"+md); err != nil {
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
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"results.md": []byte(md), "results.json": raw, "load.png": png.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "\nWritten to %s: results.md, results.json, load.png, logs/.\n", dir)
	return err
}

// firstField is the first word of s, "?" if none.
func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "?"
}
