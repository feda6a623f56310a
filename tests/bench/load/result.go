package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// result is everything measured on one store.
type result struct {
	Store       string  `json:"store"`
	DurationSec float64 `json:"durationSeconds"`
	DrainSec    float64 `json:"drainSeconds"`
	Publishes   int     `json:"publishes"`
	// PublishRate is achieved publishes per second; TargetRate the schedule's.
	PublishRate float64         `json:"publishesPerSecond"`
	TargetRate  float64         `json:"targetPublishesPerSecond"`
	Latency     map[string]dist `json:"latency"` // by request kind, requests started in the measured phase
	Fanout      dist            `json:"fanout"`
	Early       int             `json:"fanoutEarly"`
	Superseded  int             `json:"fanoutSuperseded"`
	Unseen      int             `json:"fanoutUnseen"`
	// StoreWritesPerSec are publishes and reports the manager accepted per
	// second: each is a store write transaction, whatever the store.
	StoreWritesPerSec float64 `json:"storeWritesPerSecond"`
	// AnswersPerSec are long-poll answers with a new index per second, all
	// nodes together: the manager's fan-out work.
	AnswersPerSec float64 `json:"longPollAnswersPerSecond"`
	// LoadStart and LoadEnd are the machine's load averages around the run.
	LoadStart string `json:"loadAverageStart"`
	LoadEnd   string `json:"loadAverageEnd"`
	// ConsulWritesPerSec and RaftPerSec are Consul's own counters (Consul only).
	ConsulWritesPerSec float64        `json:"consulWritesPerSecond,omitempty"`
	RaftPerSec         float64        `json:"raftAppliesPerSecond,omitempty"`
	RSSStart           float64        `json:"managerRSSStartMiB"`
	RSSPeak            float64        `json:"managerRSSPeakMiB"`
	RSSFinal           float64        `json:"managerRSSFinalMiB"`
	ManagerCPU         float64        `json:"managerCPUSeconds"` // in the measured phase
	ConsulCPU          float64        `json:"consulCPUSeconds,omitempty"`
	HarnessCPU         float64        `json:"harnessCPUSeconds"`
	Errors             map[string]int `json:"errors"`
	ErrorsTotal        int            `json:"errorsTotal"`
	Windows            []slot         `json:"windows"`
	Timeline           []point        `json:"timeline"`
}

// slot is one window of the measured phase, for the charts.
type slot struct {
	T       float64 `json:"t"` // window start, seconds
	Fanout  dist    `json:"fanout"`
	Publish dist    `json:"publish"`
}

func newResult(cfg config, storeName string, w window, rec *recorder, fo fanout, publishes int, tl []point) *result {
	dur := w.end.Sub(w.start)
	r := &result{Store: storeName, DurationSec: dur.Seconds(), DrainSec: w.drained.Seconds(),
		Publishes: publishes, PublishRate: float64(publishes) / dur.Seconds(), TargetRate: cfg.publishRate(),
		Latency: map[string]dist{}, Early: fo.Early, Superseded: fo.Superseded, Unseen: fo.Unseen,
		Errors: rec.errors(), Timeline: tl}
	for _, k := range requestKinds {
		r.Latency[k] = distOf(rec.between(k, w.start, w.end))
	}
	var all []time.Duration
	for _, s := range fo.Samples {
		all = append(all, s.d)
	}
	r.Fanout = distOf(all)
	for _, n := range r.Errors {
		r.ErrorsTotal += n
	}
	r.resources(tl, dur.Seconds())
	r.Windows = windows(w, dur, rec, fo)
	return r
}

// resources fills the rates, memory and CPU from the timeline: rates and
// CPU over the measured phase [0, d]; memory over it and the drain.
func (r *result) resources(tl []point, d float64) {
	if len(tl) == 0 {
		return
	}
	first, last := at(tl, 0), at(tl, d)
	span := last.T - first.T
	if span <= 0 {
		span = d
	}
	r.StoreWritesPerSec = float64(last.StoreWrites-first.StoreWrites) / span
	r.AnswersPerSec = float64(last.Answers-first.Answers) / span
	if first.Consul != nil && last.Consul != nil {
		r.ConsulWritesPerSec = (last.Consul.KVWrites - first.Consul.KVWrites) / span
		r.RaftPerSec = (last.Consul.RaftApplies - first.Consul.RaftApplies) / span
	}
	r.ManagerCPU = last.ManagerCPU - first.ManagerCPU
	r.ConsulCPU = last.ConsulCPU - first.ConsulCPU
	r.HarnessCPU = last.HarnessCPU - first.HarnessCPU
	r.RSSStart = first.ManagerRSS
	for _, p := range tl {
		if p.T >= 0 {
			r.RSSPeak = max(r.RSSPeak, p.ManagerRSS)
		}
	}
	r.RSSFinal = tl[len(tl)-1].ManagerRSS
}

// at is the last point at or before t, or the first point.
func at(tl []point, t float64) point {
	i, _ := slices.BinarySearchFunc(tl, t, func(p point, t float64) int {
		switch {
		case p.T <= t:
			return -1
		default:
			return 1
		}
	})
	return tl[max(i-1, 0)]
}

// windows cuts the measured phase into about 36 windows of whole seconds
// (1 to 10 s each) and computes the fan-out and publish latencies of each.
func windows(w window, dur time.Duration, rec *recorder, fo fanout) []slot {
	size := min(max((dur/36).Truncate(time.Second), time.Second), 10*time.Second)
	n := int(math.Ceil(float64(dur) / float64(size)))
	fan := make([][]time.Duration, n)
	for _, s := range fo.Samples {
		if i := int(s.at.Sub(w.start) / size); i >= 0 && i < n {
			fan[i] = append(fan[i], s.d)
		}
	}
	var out []slot
	for i := range n {
		from := w.start.Add(time.Duration(i) * size)
		out = append(out, slot{T: from.Sub(w.start).Seconds(), Fanout: distOf(fan[i]),
			Publish: distOf(rec.between(kindPublish, from, from.Add(size)))})
	}
	return out
}

// cores is CPU seconds per second of the measured phase.
func (r *result) cores(cpu float64) float64 { return cpu / r.DurationSec }

// summary is the few lines printed as each store finishes.
func (r *result) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d publishes (%.1f/s), fan-out p50 %s p99 %s max %s over %d samples (%d superseded, %d unseen)\n",
		r.Store, r.Publishes, r.PublishRate, fmtMs(r.Fanout.P50), fmtMs(r.Fanout.P99), fmtMs(r.Fanout.Max), r.Fanout.N, r.Superseded, r.Unseen)
	for _, k := range requestKinds {
		d := r.Latency[k]
		fmt.Fprintf(&b, "  %-8s p50 %s p99 %s (%d)\n", k, fmtMs(d.P50), fmtMs(d.P99), d.N)
	}
	fmt.Fprintf(&b, "  store writes %.0f/s, long-poll answers %.0f/s", r.StoreWritesPerSec, r.AnswersPerSec)
	if r.Store == storeConsul {
		fmt.Fprintf(&b, ", Consul KV writes %.0f/s, Raft applies %.0f/s, Consul CPU %.2f cores", r.ConsulWritesPerSec, r.RaftPerSec, r.cores(r.ConsulCPU))
	}
	fmt.Fprintf(&b, "\n  manager RSS %.0f MiB at start, %.0f peak, %.0f final; manager CPU %.2f cores, harness %.2f; errors %d",
		r.RSSStart, r.RSSPeak, r.RSSFinal, r.cores(r.ManagerCPU), r.cores(r.HarnessCPU), r.ErrorsTotal)
	return b.String()
}

// fmtMs prints milliseconds with three significant digits.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}
