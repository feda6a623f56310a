package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestDistOf(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var out []time.Duration
		for _, v := range vs {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted on purpose
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want dist
	}{
		{"none", nil, dist{}},
		{"one", ms(7), dist{N: 1, P50: 7, P99: 7, Max: 7}},
		{"two", ms(9, 1), dist{N: 2, P50: 1, P99: 9, Max: 9}},
		{"hundred", ms(hundred...), dist{N: 100, P50: 50, P99: 99, Max: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := distOf(tc.in); got != tc.want {
				t.Errorf("distOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseConsulCounters(t *testing.T) {
	in := `# HELP consul_kvs_apply consul_kvs_apply
consul_kvs_apply{quantile="0.5"} 0.46
consul_kvs_apply_count 3
consul_raft_apply 16
consul_txn_apply_sum 0.6
consul_txn_apply_count 40
consul_raft_apply_other 99
`
	got, err := parseConsulCounters(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (consulCounters{KVWrites: 43, RaftApplies: 16}); got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
}

func TestAt(t *testing.T) {
	tl := []point{{T: -2, ManagerRSS: 1}, {T: 0.1, ManagerRSS: 2}, {T: 1.1, ManagerRSS: 3}}
	for _, tc := range []struct {
		t    float64
		want float64
	}{{-5, 1}, {0, 1}, {0.1, 2}, {1, 2}, {9, 3}} {
		if got := at(tl, tc.t).ManagerRSS; got != tc.want {
			t.Errorf("at(%v) = point %v, want %v", tc.t, got, tc.want)
		}
	}
}

// TestFanout: a sighting after the publish is a sample, one before it
// counts 0 and early, a newer head instead is superseded, nothing unseen.
func TestFanout(t *testing.T) {
	t0 := time.Now()
	a := &node{seen: map[string]map[string]time.Time{"c": {"r02": t0.Add(30 * time.Millisecond)}}}
	b := &node{seen: map[string]map[string]time.Time{"c": {"r01": t0.Add(-time.Millisecond)}}}
	c := &node{seen: map[string]map[string]time.Time{"c": {}}}
	f := &fleet{byChannel: map[string][]*node{"c": {a, b, c}}}
	got := f.fanout([]publication{{Channel: "c", Version: "r01", Done: t0}, {Channel: "c", Version: "r02", Done: t0}})
	// r01: a superseded, b early (0), c unseen; r02: a 30 ms, b and c unseen.
	if len(got.Samples) != 2 || got.Early != 1 || got.Superseded != 1 || got.Unseen != 3 {
		t.Fatalf("fanout = %+v", got)
	}
	if d := distOf([]time.Duration{got.Samples[0].d, got.Samples[1].d}); d.P50 != 0 || d.Max != 30 {
		t.Errorf("samples %+v", d)
	}
}

func testReport() *report {
	mk := func(store string, fan float64) *result {
		r := &result{Store: store, DurationSec: 10, Publishes: 100, PublishRate: 10, TargetRate: 10,
			Latency: map[string]dist{}, Fanout: dist{N: 500, P50: fan, P99: 2 * fan, Max: 3 * fan},
			StoreWritesPerSec: 120, AnswersPerSec: 900, RSSStart: 30, RSSPeak: 50, RSSFinal: 45, ManagerCPU: 5, HarnessCPU: 2,
			Errors: map[string]int{}}
		for _, k := range requestKinds {
			r.Latency[k] = dist{N: 10, P50: 1.5, P99: 12}
		}
		for i := range 10 {
			r.Windows = append(r.Windows, slot{T: float64(i), Fanout: dist{N: 1, P50: fan, P99: 2 * fan}, Publish: dist{N: 1, P50: 1, P99: 2}})
			r.Timeline = append(r.Timeline, point{T: float64(i), ManagerRSS: 40, ManagerCPU: float64(i) / 2})
		}
		return r
	}
	c := mk(storeConsul, 40)
	c.ConsulWritesPerSec, c.RaftPerSec, c.ConsulCPU = 130, 140, 3
	c.LoadStart, c.LoadEnd = "1.50 1.20 1.00", "2.25 1.50 1.10"
	c.Errors, c.ErrorsTotal = map[string]int{kindReport: 2, kindLongPoll: 1}, 3
	return &report{Machine: "test machine", Revision: "abc", Config: "tiny", Results: []*result{c, mk(storeBolt, 4)}}
}

func TestMarkdown(t *testing.T) {
	md := testReport().markdown()
	for _, want := range []string{
		"| consul | 10.0 (10.0) | 1.50 / 12.0 | 1.50 / 12.0 | 1.50 / 12.0 | 1.50 / 12.0 | 40.0 / 80.0 / 120 | 500 | 0 / 0 | 3 (report 2, longpoll 1) |",
		"| bbolt | 10.0 (10.0) | 1.50 / 12.0 | 1.50 / 12.0 | 1.50 / 12.0 | 1.50 / 12.0 | 4.00 / 8.00 / 12.0 | 500 | 0 / 0 | 0 |",
		"| consul | 120 | 130 | 140 | 900 | 30 / 50 / 45 | 0.50 | 0.30 | 0.20 | 1.50 → 2.25 |",
		"| bbolt | 120 | — | — | 900 | 30 / 50 / 45 | 0.50 | — | 0.20 | ? → ? |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := testReport().write(&out, dir); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir)
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-stores", "bbolt", "-agents", "5"}, ""},
		{[]string{"-stores", "etcd"}, "unknown store"},
		{[]string{"-channels", "2", "-channels-per-node", "3"}, "channels-per-node"},
		{[]string{"-duration", "0s"}, "want both positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseConfig(tc.args)
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseConfig: %v, want error containing %q", err, tc.err)
			}
		})
	}
}
