package metricsdoc_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/metricsdoc"
)

type gridPos struct{ H, W, X, Y int }

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Type       string  `json:"type"`
	Title      string  `json:"title"`
	GridPos    gridPos `json:"gridPos"`
	Datasource *dsRef  `json:"datasource"`
	Targets    []struct {
		Expr       string `json:"expr"`
		Datasource *dsRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows (a collapsed row holds its panels).
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

const dsVar = "${DS_PROMETHEUS}"

// TestDashboard: every query of deploy/grafana/hydra.json reads metrics the
// binaries export and docs/metrics.md lists, with labels they have; every
// panel queries the DS_PROMETHEUS data source variable; panels do not
// overlap; and every panel the doc names exists.
func TestDashboard(t *testing.T) {
	f, doc, d := codeFamilies(t), readDoc(t), readDashboard(t)
	var ds bool
	for _, v := range d.Templating.List {
		switch {
		case v.Name == "DS_PROMETHEUS":
			ds = v.Type == "datasource" && string(v.Query) == `"prometheus"`
		case v.Type == "query":
			checkVariableQuery(t, v.Name, v.Query, v.Datasource, f, doc)
		}
	}
	if !ds {
		t.Error(`no templating variable DS_PROMETHEUS of type datasource, query "prometheus"`)
	}
	titles := map[string]bool{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		titles[p.Title] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != dsVar {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dsVar)
		}
		for _, q := range p.Targets {
			queries++
			if q.Datasource != nil && q.Datasource.UID != dsVar {
				t.Errorf("panel %q: a query's datasource is %+v, want uid %s", p.Title, q.Datasource, dsVar)
			}
			if err := metricsdoc.CheckQuery(q.Expr, f, doc); err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
			}
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
	checkGrid(t, allPanels(d.Panels))
	// The rows' "for" cells name panels in italics: *Panel title*.
	for _, r := range doc.Rows {
		for _, m := range regexp.MustCompile(`\*([^*]+)\*`).FindAllStringSubmatch(r.For, -1) {
			if !titles[m[1]] {
				t.Errorf("docs/metrics.md line %d names panel %q, which the dashboard does not have", r.Line, m[1])
			}
		}
	}
}

// checkVariableQuery checks a query variable: label_values(SELECTOR, LABEL).
func checkVariableQuery(t *testing.T, name string, raw json.RawMessage, src *dsRef, f metricsdoc.Families, doc metricsdoc.Doc) {
	t.Helper()
	var q struct{ Query string }
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Errorf("variable %s: query %s: %v", name, raw, err)
		return
	}
	m := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]+)\)$`).FindStringSubmatch(q.Query)
	if m == nil {
		t.Errorf("variable %s: query %q is not label_values(SELECTOR, LABEL)", name, q.Query)
		return
	}
	if err := metricsdoc.CheckQuery(m[1]+" by ("+m[2]+")", f, doc); err != nil {
		t.Errorf("variable %s: %v", name, err)
	}
	if src == nil || src.UID != dsVar {
		t.Errorf("variable %s: datasource %+v, want uid %s", name, src, dsVar)
	}
}

// checkGrid: panels stay in Grafana's 24 columns and do not overlap.
func checkGrid(t *testing.T, ps []panel) {
	t.Helper()
	for i, a := range ps {
		g := a.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", a.Title, g)
		}
		for _, b := range ps[i+1:] {
			h := b.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", a.Title, b.Title)
			}
		}
	}
}

// TestDashboardCoversTheBrief: the panels operators asked for are there.
func TestDashboardCoversTheBrief(t *testing.T) {
	var titles []string
	for _, p := range allPanels(readDashboard(t).Panels) {
		titles = append(titles, p.Title)
	}
	for _, want := range []string{"Head moves", "Rollout pods by phase", "Pod move duration p50 / p99", "Rollbacks",
		"Manager leader and long-polls", "API requests by route", "API latency p99 by route", "Download throughput per node",
		"Download duration p50 / p99", "Releases by state per node", "Agent errors per node", "Store errors"} {
		if !slices.Contains(titles, want) {
			t.Errorf("no panel %q; panels: %s", want, strings.Join(titles, ", "))
		}
	}
}
