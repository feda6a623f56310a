package metricsdoc

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Selector is one metric a PromQL expression reads, with the label names
// its matchers use.
type Selector struct {
	Metric string
	Labels []string
}

// Query is what a PromQL expression refers to: metrics and the labels it
// groups or matches on (by, without, on, ignoring, group_left/right).
type Query struct {
	Selectors []Selector
	Grouping  []string
}

// promqlGrouping keywords take a parenthesised list of label names.
var promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// promqlWords are keywords, literals and aggregation operators (which may
// take "by (…)" before their parenthesis), none of them a metric name.
var promqlWords = []string{"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end",
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
	"quantile", "limitk", "limit_ratio"}

// ParseQuery reads the metric names and label names out of a PromQL
// expression: enough of a lexer to tell metric names from functions,
// keywords, label lists, strings, numbers, durations and Grafana's $vars,
// not a full parser. Unbalanced brackets and unterminated strings are
// errors.
func ParseQuery(expr string) (Query, error) {
	p := &lexer{s: expr}
	var q Query
	for p.skipSpace(); p.i < len(p.s); p.skipSpace() {
		c := p.s[p.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := p.skipString(); err != nil {
				return q, err
			}
		case c == '[':
			if err := p.skipTo(']'); err != nil {
				return q, err
			}
		case c == '{':
			// A matcher list with no metric before it ({__name__=…}).
			if _, err := p.labelList('{', '}'); err != nil {
				return q, err
			}
		case c == '$':
			p.skipVariable()
		case isDigit(c) || c == '.':
			p.skipNumber()
		case isIdentStart(c):
			if err := p.word(&q); err != nil {
				return q, err
			}
		default:
			p.i++
		}
	}
	return q, nil
}

type lexer struct {
	s string
	i int
}

// word handles an identifier: a grouping keyword with its label list, a
// keyword, a function (followed by "("), or a metric with its matchers.
func (p *lexer) word(q *Query) error {
	w := p.ident()
	p.skipSpace()
	next := byte(0)
	if p.i < len(p.s) {
		next = p.s[p.i]
	}
	switch {
	case slices.Contains(promqlGrouping, w):
		if next != '(' {
			return nil // group_left without labels
		}
		labels, err := p.labelList('(', ')')
		q.Grouping = append(q.Grouping, labels...)
		return err
	case slices.Contains(promqlWords, strings.ToLower(w)):
		return nil
	case next == '(':
		return nil // a function or an aggregation
	}
	sel := Selector{Metric: w}
	if next == '{' {
		labels, err := p.labelList('{', '}')
		if err != nil {
			return err
		}
		sel.Labels = labels
	}
	q.Selectors = append(q.Selectors, sel)
	return nil
}

// labelList reads "(a, b)" or "{a="x", b=~"y"}" and returns the label names.
func (p *lexer) labelList(open, closing byte) ([]string, error) {
	start := p.i
	p.i++ // open
	var labels []string
	for p.skipSpace(); p.i < len(p.s); p.skipSpace() {
		c := p.s[p.i]
		switch {
		case c == closing:
			p.i++
			return labels, nil
		case c == '"' || c == '\'' || c == '`':
			if err := p.skipString(); err != nil {
				return nil, err
			}
		case c == '$':
			p.skipVariable()
		case isIdentStart(c):
			labels = append(labels, p.ident())
		case c == ',' || c == '=' || c == '!' || c == '~':
			p.i++
		default:
			return nil, fmt.Errorf("promql: unexpected %q in the list at offset %d of %q", c, start, p.s)
		}
	}
	return nil, fmt.Errorf("promql: %q at offset %d is never closed in %q", open, start, p.s)
}

func (p *lexer) ident() string {
	start := p.i
	for p.i < len(p.s) && (isIdentStart(p.s[p.i]) || isDigit(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *lexer) skipSpace() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *lexer) skipString() error {
	quote, start := p.s[p.i], p.i
	for p.i++; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case '\\':
			if quote != '`' {
				p.i++
			}
		case quote:
			p.i++
			return nil
		}
	}
	return fmt.Errorf("promql: string at offset %d is never closed in %q", start, p.s)
}

func (p *lexer) skipTo(closing byte) error {
	start := p.i
	if j := strings.IndexByte(p.s[p.i:], closing); j >= 0 {
		p.i += j + 1
		return nil
	}
	return fmt.Errorf("promql: %q at offset %d is never closed in %q", p.s[start], start, p.s)
}

// skipVariable skips a Grafana variable: $name, ${name} or ${name:format}.
func (p *lexer) skipVariable() {
	p.i++
	if p.i < len(p.s) && p.s[p.i] == '{' {
		if j := strings.IndexByte(p.s[p.i:], '}'); j >= 0 {
			p.i += j + 1
			return
		}
	}
	p.ident()
}

// skipNumber skips a number or a duration (1.5, 1e3, 0x1f, 5m, 1h30m).
func (p *lexer) skipNumber() {
	for p.i < len(p.s) && (isDigit(p.s[p.i]) || isIdentStart(p.s[p.i]) || p.s[p.i] == '.') {
		p.i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// histogramSuffixes are the series a histogram family exports.
var histogramSuffixes = []string{"_bucket", "_sum", "_count"}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

// CheckQuery holds a PromQL expression to the code and the doc: each metric
// it reads is a family the code exports (a histogram's _bucket, _sum and
// _count series included) and has a row in the doc; each label it matches
// or groups on is one of those metrics' labels, a target label (instance,
// job), or le on a histogram's buckets.
func CheckQuery(expr string, fams Families, doc Doc) error {
	q, err := ParseQuery(expr)
	if err != nil {
		return err
	}
	if len(q.Selectors) == 0 {
		return fmt.Errorf("%q reads no metric", expr)
	}
	var errs []error
	known := slices.Clone(targetLabels)
	for _, s := range q.Selectors {
		f, series, err := familyOfSeries(s.Metric, fams)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, ok := doc.Rows[f.Name]; !ok && !Runtime(f.Name) {
			errs = append(errs, fmt.Errorf("%s is not in docs/metrics.md", f.Name))
		}
		labels := slices.Concat(f.Labels, targetLabels)
		if series == "_bucket" {
			labels = append(labels, "le")
		}
		known = append(known, labels...)
		for _, l := range s.Labels {
			if !slices.Contains(labels, l) {
				errs = append(errs, fmt.Errorf("%s has no label %s", s.Metric, l))
			}
		}
	}
	for _, l := range q.Grouping {
		if !slices.Contains(known, l) {
			errs = append(errs, fmt.Errorf("%q groups on %s, which none of its metrics has", expr, l))
		}
	}
	return errors.Join(errs...)
}

// familyOfSeries finds the family of a series name, and which of a
// histogram's series it is.
func familyOfSeries(name string, fams Families) (Family, string, error) {
	if f, ok := fams[name]; ok {
		return f, "", nil
	}
	for _, suffix := range histogramSuffixes {
		base, ok := strings.CutSuffix(name, suffix)
		if f, found := fams[base]; ok && found {
			if f.Type != "histogram" && f.Type != "summary" {
				return Family{}, "", fmt.Errorf("%s: %s is a %s, not a histogram", name, base, f.Type)
			}
			if suffix == "_bucket" && f.Type != "histogram" {
				return Family{}, "", fmt.Errorf("%s: %s is a summary, it has no buckets", name, base)
			}
			return f, suffix, nil
		}
	}
	return Family{}, "", fmt.Errorf("%s: no binary exports this metric", name)
}
