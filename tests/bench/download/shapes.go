package main

import (
	"fmt"
	"strconv"
	"strings"
)

// shape is one dataset layout of the benchmark: count objects of size bytes.
type shape struct {
	count int
	size  int64
}

// Name is how tables and S3 prefixes call a shape: "16x256MiB".
func (s shape) Name() string { return fmt.Sprintf("%dx%s", s.count, sizeName(s.size)) }

// ID is the shape's name in lower case, valid as a channel name part and
// as an S3 prefix.
func (s shape) ID() string { return strings.ToLower(s.Name()) }

// Bytes is the shape's total size.
func (s shape) Bytes() int64 { return int64(s.count) * s.size }

// presets: "full" is the set docs/benchmarks.md reports; "small" the same four kinds at about
// a tenth of the bytes, for a run of a few minutes.
var presets = map[string][]shape{
	"full": {
		{1, 2 << 30}, {16, 256 << 20}, {2000, 1 << 20}, {10000, 64 << 10},
	},
	"small": {
		{1, 256 << 20}, {4, 64 << 20}, {200, 1 << 20}, {1000, 64 << 10},
	},
}

// parseShapes reads a comma-separated list of preset names ("full",
// "small") and shapes ("4x64MiB", "100x1MiB").
func parseShapes(spec string) ([]shape, error) {
	var out []shape
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		if p, ok := presets[item]; ok {
			out = append(out, p...)
			continue
		}
		count, size, ok := strings.Cut(item, "x")
		n, err := strconv.Atoi(count)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("shape %q: want COUNTxSIZE (4x64MiB) or a preset (full, small)", item)
		}
		b, err := parseSize(size)
		if err != nil {
			return nil, fmt.Errorf("shape %q: %w", item, err)
		}
		out = append(out, shape{n, b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no shapes in %q", spec)
	}
	return out, nil
}

var units = []struct {
	suffix string
	bytes  int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}

// parseSize reads "64KiB", "1MiB", "2GiB" or a plain byte count.
func parseSize(s string) (int64, error) {
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("size %q: want a positive number of %s", s, u.suffix)
			}
			return n * u.bytes, nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want e.g. 64KiB, 1MiB, 2GiB", s)
	}
	return n, nil
}

// sizeName is the largest binary unit that divides size exactly.
func sizeName(size int64) string {
	for _, u := range units {
		if size%u.bytes == 0 {
			return fmt.Sprintf("%d%s", size/u.bytes, u.suffix)
		}
	}
	return strconv.FormatInt(size, 10) + "B"
}
