package metricsdoc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/metricsdoc"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		metrics  []string // metric{label,label}
		grouping []string
	}{
		{"up", []string{"up{}"}, nil},
		{`sum by (route) (rate(hydra_x_total{code=~"5..", route!="GET /v1/{c}"}[$__rate_interval]))`,
			[]string{"hydra_x_total{code,route}"}, []string{"route"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(h_bucket[5m])))`, []string{"h_bucket{}"}, []string{"le", "route"}},
		{`sum(a) without (op) / on (instance) group_left (state) b offset 1h`, []string{"a{}", "b{}"}, []string{"op", "instance", "state"}},
		{`a > 0 and sum(increase(b_count[30m:1m])) == bool 0 or c unless d`, []string{"a{}", "b_count{}", "c{}", "d{}"}, nil},
		{`x{instance=~"$instance", job="${job:regex}"} * 1e3 + 0x1f - .5`, []string{"x{instance,job}"}, nil},
		{`count_values("v", y) by (v)`, []string{"y{}"}, []string{"v"}},
		{`z{a='it\'s'}`, []string{"z{a}"}, nil},
	} {
		q, err := metricsdoc.ParseQuery(tc.expr)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", tc.expr, err)
			continue
		}
		var got []string
		for _, s := range q.Selectors {
			got = append(got, fmt.Sprintf("%s{%s}", s.Metric, strings.Join(s.Labels, ",")))
		}
		if !slices.Equal(got, tc.metrics) || !slices.Equal(q.Grouping, tc.grouping) {
			t.Errorf("ParseQuery(%q) = %q grouping %q, want %q grouping %q", tc.expr, got, q.Grouping, tc.metrics, tc.grouping)
		}
	}
	for _, bad := range []string{`x{a="b"`, `rate(x[5m)`, `x{a="b}`, `sum by (a`} {
		if _, err := metricsdoc.ParseQuery(bad); err == nil {
			t.Errorf("ParseQuery(%q) = nil error, want one", bad)
		}
	}
}

// TestCheckQuery shows CheckQuery catching each kind of wrong query.
func TestCheckQuery(t *testing.T) {
	fams := metricsdoc.Families{
		"hydra_req_total": {Name: "hydra_req_total", Type: "counter", Labels: []string{"code", "route"}},
		"hydra_lat":       {Name: "hydra_lat", Type: "histogram", Labels: []string{"route"}},
		"hydra_undoc":     {Name: "hydra_undoc", Type: "gauge"},
	}
	doc, err := metricsdoc.ParseDoc("| metric | type | labels | meaning | for |\n|---|---|---|---|---|\n" +
		"| `hydra_req_total` | counter | `code` `route` | a | b |\n| `hydra_lat` | histogram | `route` | a | b |\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ expr, want string }{
		{`sum by (route) (rate(hydra_req_total{code="500"}[5m]))`, ""},
		{`histogram_quantile(0.99, sum by (le, route) (rate(hydra_lat_bucket{instance=~"$instance"}[5m])))`, ""},
		{`sum(rate(hydra_lat_count[5m])) / sum(rate(hydra_lat_sum[5m]))`, ""},
		{`rate(hydra_typo_total[5m])`, "hydra_typo_total: no binary exports this metric"},
		{`rate(hydra_req_total{node="a"}[5m])`, "hydra_req_total has no label node"},
		{`sum by (node) (rate(hydra_req_total[5m]))`, "groups on node"},
		{`sum by (le) (rate(hydra_req_total_bucket[5m]))`, "hydra_req_total is a counter, not a histogram"},
		{`sum by (le) (rate(hydra_lat[5m]))`, "groups on le"},
		{`hydra_undoc`, "hydra_undoc is not in docs/metrics.md"},
		{`vector(1)`, "reads no metric"},
	} {
		err := metricsdoc.CheckQuery(tc.expr, fams, doc)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckQuery(%q) = %v, want nil", tc.expr, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckQuery(%q) = %v, want an error containing %q", tc.expr, err, tc.want)
		}
	}
}
