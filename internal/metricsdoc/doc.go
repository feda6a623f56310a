package metricsdoc

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Row is one metric's row in docs/metrics.md: a table whose header is
// "| metric | type | labels | meaning | for |".
type Row struct {
	Name, Type, Labels, Meaning, For string
	// Line is the row's line number in the file.
	Line int
}

// Doc is the metric rows of docs/metrics.md by name, and its text.
type Doc struct {
	Rows map[string]Row
	Text string
}

var (
	docHeader = regexp.MustCompile(`^\|\s*metric\s*\|\s*type\s*\|\s*labels\s*\|\s*meaning\s*\|\s*for\s*\|$`)
	docName   = regexp.MustCompile("^`([a-zA-Z_:][a-zA-Z0-9_:]*)`$")
	docCode   = regexp.MustCompile("`([^`]*)`")
)

// ReadDoc parses the metric tables of the Markdown file at path.
func ReadDoc(path string) (Doc, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Doc{}, err
	}
	return ParseDoc(string(raw))
}

// ParseDoc parses the metric tables of a Markdown text.
func ParseDoc(text string) (Doc, error) {
	doc := Doc{Rows: map[string]Row{}, Text: text}
	var errs []error
	inTable := false
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case docHeader.MatchString(line):
			inTable = true
			continue
		case !strings.HasPrefix(line, "|"):
			inTable = false
			continue
		case !inTable || strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "| ---"):
			continue
		}
		cells := splitRow(line)
		if len(cells) != 5 {
			errs = append(errs, fmt.Errorf("line %d: a metric row has 5 cells, this one %d", i+1, len(cells)))
			continue
		}
		m := docName.FindStringSubmatch(cells[0])
		if m == nil {
			errs = append(errs, fmt.Errorf("line %d: the first cell %q is not one `metric_name`", i+1, cells[0]))
			continue
		}
		if prev, ok := doc.Rows[m[1]]; ok {
			errs = append(errs, fmt.Errorf("line %d: %s is listed again (first on line %d)", i+1, m[1], prev.Line))
			continue
		}
		doc.Rows[m[1]] = Row{Name: m[1], Type: cells[1], Labels: cells[2], Meaning: cells[3], For: cells[4], Line: i + 1}
	}
	return doc, errors.Join(errs...)
}

// splitRow splits a table row into its trimmed cells; "\|" is a pipe
// inside a cell (PromQL's `or`-less alternations, say).
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	parts := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(p, "\x00", "|"))
	}
	return parts
}

// Check holds the doc to the code's families: every family has a row with
// its type, every label named in the labels cell, and a meaning and a use;
// every row is a family the code exports. The Go runtime's and process
// metrics are covered by the doc naming `go_*` and `process_*`.
func (d Doc) Check(fams Families) error {
	var errs []error
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := fams[name]
		if Runtime(name) {
			continue
		}
		r, ok := d.Rows[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s (%s) is exported but has no row in the metric tables", name, f.Type))
			continue
		}
		errs = append(errs, r.check(f))
	}
	for _, prefix := range []string{"go_*", "process_*"} {
		if !strings.Contains(d.Text, "`"+prefix+"`") {
			errs = append(errs, fmt.Errorf("the doc does not mention `%s` (the runtime metrics every binary exports)", prefix))
		}
	}
	for name, r := range d.Rows {
		if _, ok := fams[name]; !ok {
			errs = append(errs, fmt.Errorf("line %d: %s is documented but no binary exports it", r.Line, name))
		}
	}
	return errors.Join(errs...)
}

func (r Row) check(f Family) error {
	var errs []error
	if r.Type != f.Type {
		errs = append(errs, fmt.Errorf("line %d: %s is a %s, the doc says %q", r.Line, f.Name, f.Type, r.Type))
	}
	named := map[string]bool{}
	for _, m := range docCode.FindAllStringSubmatch(r.Labels, -1) {
		named[m[1]] = true
	}
	for _, l := range f.Labels {
		if !named[l] {
			errs = append(errs, fmt.Errorf("line %d: %s has the label %s, which its labels cell does not name as `%s`", r.Line, f.Name, l, l))
		}
	}
	if len(f.Labels) == 0 && r.Labels != "-" {
		errs = append(errs, fmt.Errorf("line %d: %s has no labels; its labels cell should be -", r.Line, f.Name))
	}
	if r.Meaning == "" || r.For == "" {
		errs = append(errs, fmt.Errorf("line %d: %s: say what it means and what it is for", r.Line, f.Name))
	}
	return errors.Join(errs...)
}
