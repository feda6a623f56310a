package metricsdoc_test

import (
	"regexp"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/internal/metricsdoc"
)

const (
	docPath       = "../../docs/metrics.md"
	dashboardPath = "../../deploy/grafana/hydra.json"
)

var (
	famsOnce sync.Once
	fams     metricsdoc.Families
	famsErr  error
)

// codeFamilies is every family the manager and the node plugin export,
// from registries built as the binaries build theirs.
func codeFamilies(t *testing.T) metricsdoc.Families {
	t.Helper()
	famsOnce.Do(func() {
		// The scratch files are only read while the registries are built.
		dir := t.TempDir()
		m, err := metricsdoc.Manager(dir)
		if err != nil {
			famsErr = err
			return
		}
		n, err := metricsdoc.Node(dir)
		fams, famsErr = metricsdoc.Merge(m, n), err
	})
	if famsErr != nil {
		t.Fatal(famsErr)
	}
	return fams
}

func readDoc(t *testing.T) metricsdoc.Doc {
	t.Helper()
	doc, err := metricsdoc.ReadDoc(docPath)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestDocListsEveryMetric: docs/metrics.md has a row for every metric the
// binaries export, with its type and labels, and none for a metric they
// do not.
func TestDocListsEveryMetric(t *testing.T) {
	f := codeFamilies(t)
	if len(f) < 20 {
		t.Fatalf("only %d families found: the registries are not built as the binaries build them", len(f))
	}
	if err := readDoc(t).Check(f); err != nil {
		t.Errorf("docs/metrics.md does not match the code:\n%v", err)
	}
}

// alertRules are the rules of the doc's yaml blocks.
type alertRules struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

func docAlerts(t *testing.T, doc metricsdoc.Doc) map[string]string {
	t.Helper()
	alerts := map[string]string{}
	for _, m := range yamlBlock.FindAllStringSubmatch(doc.Text, -1) {
		var r alertRules
		if err := yaml.UnmarshalStrict([]byte(m[1]), &r); err != nil {
			t.Fatalf("docs/metrics.md: a yaml block is not a rule file: %v", err)
		}
		for _, g := range r.Groups {
			for _, rule := range g.Rules {
				alerts[rule.Alert] = rule.Expr
			}
		}
	}
	return alerts
}

// TestDocAlerts: every alert rule in the doc reads metrics the code
// exports, with labels they have; every alert a row names exists.
func TestDocAlerts(t *testing.T) {
	f, doc := codeFamilies(t), readDoc(t)
	alerts := docAlerts(t, doc)
	if len(alerts) == 0 {
		t.Fatal("docs/metrics.md has no alert rules")
	}
	for name, expr := range alerts {
		if err := metricsdoc.CheckQuery(expr, f, doc); err != nil {
			t.Errorf("alert %s: %v", name, err)
		}
	}
	for _, r := range doc.Rows {
		for _, m := range regexp.MustCompile("alert `([A-Za-z]+)`").FindAllStringSubmatch(r.For, -1) {
			if _, ok := alerts[m[1]]; !ok {
				t.Errorf("line %d: %s names alert %s, which the doc's rules do not define", r.Line, r.Name, m[1])
			}
		}
	}
}

// TestDocCheckFails shows the check catching each kind of drift.
func TestDocCheckFails(t *testing.T) {
	code := metricsdoc.Families{
		"hydra_a_total": {Name: "hydra_a_total", Type: "counter", Labels: []string{"op"}},
		"hydra_b":       {Name: "hydra_b", Type: "gauge"},
		"go_goroutines": {Name: "go_goroutines", Type: "gauge"},
	}
	good := "`go_*` and `process_*`\n\n" +
		"| metric | type | labels | meaning | for |\n|---|---|---|---|---|\n" +
		"| `hydra_a_total` | counter | `op`: `x` | a | b |\n" +
		"| `hydra_b` | gauge | - | a | b |\n"
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"good", good, ""},
		{"missing row", strings.Replace(good, "| `hydra_b` | gauge | - | a | b |\n", "", 1), "hydra_b (gauge) is exported but has no row"},
		{"wrong type", strings.Replace(good, "| `hydra_b` | gauge", "| `hydra_b` | counter", 1), `hydra_b is a gauge, the doc says "counter"`},
		{"label not named", strings.Replace(good, "`op`: `x`", "operation", 1), "has the label op"},
		{"stale row", good + "| `hydra_gone_total` | counter | - | a | b |\n", "hydra_gone_total is documented but no binary exports it"},
		{"no use given", strings.Replace(good, "| `hydra_b` | gauge | - | a | b |", "| `hydra_b` | gauge | - | a | |", 1), "say what it means and what it is for"},
		{"runtime metrics not mentioned", strings.Replace(good, "`go_*` and ", "", 1), "does not mention `go_*`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := metricsdoc.ParseDoc(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			err = doc.Check(code)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestSeriesExistFromTheStart: every Hydra family has series before
// anything happened (vectors start with each label value the code knows,
// at 0), as docs/metrics.md promises, so that increase() alerts see the
// first event. The HTTP layer's have theirs from the one request the
// registry was built with: their routes and codes are open-ended.
func TestSeriesExistFromTheStart(t *testing.T) {
	for name, f := range codeFamilies(t) {
		if !metricsdoc.Runtime(name) && f.Series == 0 {
			t.Errorf("%s (labels %v) has no series until first used: give its labels their known values at start", name, f.Labels)
		}
	}
}
