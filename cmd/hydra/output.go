package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputYAML  = "yaml"
)

// render writes v as JSON or YAML, or calls table for the human view. The
// JSON and YAML forms are the API types themselves, so scripts can decode
// them with package api.
func (a *app) render(v any, table func(w io.Writer)) error {
	switch a.output {
	case outputJSON:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := a.stdout.Write(safeJSON(buf.Bytes()))
		return err
	case outputYAML:
		// sigs.k8s.io/yaml goes through encoding/json, so the json tags
		// (and release.Duration's text form) hold in YAML too.
		out, err := yaml.Marshal(v)
		if err != nil || hasRawControl(out) {
			// The YAML emitter refuses C0 controls in strings and writes
			// bidirectional and C1 controls raw. JSON is YAML too, and
			// safeJSON escapes them: the same document, safe to print.
			if out, err = json.MarshalIndent(v, "", "  "); err != nil {
				return fmt.Errorf("render YAML: %w", err)
			}
			out = append(safeJSON(out), '\n')
		}
		_, err = a.stdout.Write(out)
		return err
	}
	tw := newTable(a.stdout)
	table(tw)
	return tw.Flush()
}

// progress is where transient lines (wait progress) go: stdout for people,
// stderr when stdout carries JSON or YAML that a script parses.
func (a *app) progress() io.Writer {
	if a.output == outputTable {
		return a.stdout
	}
	return a.stderr
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// row writes tab-separated cells as one table line, each made safe to
// print (see safe). Trailing empty cells
// are dropped: tabwriter pads every tab-terminated cell, and an empty last
// column (an unmarked row) would leave trailing blanks.
func row(w io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = safe(fmt.Sprint(c))
	}
	for len(parts) > 1 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

// plural renders "1 file", "2 files".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// humanBytes renders a size in IEC units: "512 B", "1.2 GiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progressBar draws "[#####.....] 52% 1.2 GiB/2.3 GiB".
func progressBar(done, total int64) string { return bar(done, total, 10) }

// bar draws a progress bar of cells cells with its percentage and sizes.
func bar(done, total int64, cells int) string {
	if total <= 0 {
		return fmt.Sprintf("[%s] %s", strings.Repeat(".", cells), humanBytes(done))
	}
	frac := min(max(float64(done)/float64(total), 0), 1)
	filled := int(frac * float64(cells))
	return fmt.Sprintf("[%s%s] %d%% %s/%s", strings.Repeat("#", filled), strings.Repeat(".", cells-filled),
		int(frac*100), humanBytes(done), humanBytes(total))
}

// formatTime renders a timestamp in UTC to the second; zero is "-".
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// orDash shows an empty value as "-" so table columns stay aligned.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
