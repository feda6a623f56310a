package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// cpuSeconds is the CPU time (user+system) process pid has used so far,
// from /proc/PID/stat ("self" for this process).
func cpuSeconds(pid string) (float64, error) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime and stime are fields 14 and 15.
	_, rest, ok := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unreadable /proc/%s/stat", pid)
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, err
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, err
	}
	const userHZ = 100 // the unit of /proc times on Linux, whatever the kernel's HZ
	return float64(utime+stime) / userHZ, nil
}

// rssMiB is the resident set of process pid (VmRSS of /proc/PID/status).
func rssMiB(pid string) (float64, error) {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }() // only read
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kib int64
		if _, err := fmt.Sscanf(sc.Text(), "VmRSS: %d kB", &kib); err == nil {
			return float64(kib) / 1024, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%s/status", pid)
}

// consulCounters are Consul's own write counters since it started.
type consulCounters struct {
	// KVWrites are applied KV writes: /v1/txn transactions (every write
	// of the manager's store goes through one) plus single-key /v1/kv
	// writes (session locks).
	KVWrites float64 `json:"kvWrites"`
	// RaftApplies are entries appended to the Raft log, which also counts
	// Consul's own catalog and session updates.
	RaftApplies float64 `json:"raftApplies"`
}

// readConsulCounters reads /v1/agent/metrics in Prometheus format:
// consul.txn.apply and consul.kvs.apply are timers whose _count is the
// number of writes applied; consul.raft.apply is a counter.
func readConsulCounters(ctx context.Context, client *http.Client, addr string) (consulCounters, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/agent/metrics?format=prometheus", nil)
	if err != nil {
		return consulCounters{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return consulCounters{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return consulCounters{}, fmt.Errorf("consul metrics: %s", resp.Status)
	}
	return parseConsulCounters(resp.Body)
}

func parseConsulCounters(r io.Reader) (consulCounters, error) {
	var c consulCounters
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "consul_txn_apply_count", "consul_kvs_apply_count":
			dst = &c.KVWrites
		case "consul_raft_apply":
			dst = &c.RaftApplies
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return c, fmt.Errorf("consul metric %s: %w", name, err)
		}
		*dst += v
	}
	return c, sc.Err()
}
