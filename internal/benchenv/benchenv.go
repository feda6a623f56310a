// Package benchenv describes the machine a benchmark runs on, the same
// way in every benchmark's results: its CPU, cores, memory and kernel,
// and the load average beside each measurement (the machine is shared).
package benchenv

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
)

// Machine is one line on the CPU model, core count, memory and kernel.
func Machine() string {
	model := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	var mem string
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(raw), "\n")
		var kib int64
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kib); err == nil {
			mem = fmt.Sprintf("%.0f GiB RAM", float64(kib)/(1<<20))
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%s, %d cores, %s, Linux %s", model, runtime.NumCPU(), mem, strings.TrimSpace(string(kernel)))
}

// LoadAverage is the 1-, 5- and 15-minute load average, "?" when unknown.
func LoadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Median of a non-empty slice; the mean of the middle two for even sizes.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
