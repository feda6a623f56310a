// Package metricsdoc lists the Prometheus metric families that Hydra's
// binaries export — registered through the same constructors, on a
// registry built as the binaries build theirs — so that tests can hold
// docs/metrics.md and the Grafana dashboard (deploy/grafana) to the code.
package metricsdoc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/source"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Family is one metric family as the code defines it.
type Family struct {
	Name string
	// Type is counter, gauge, histogram, summary or untyped.
	Type string
	// Labels are the variable label names, sorted.
	Labels []string
	// Series is how many series the registry gathered of it.
	Series int
}

// Families indexes families by name.
type Families map[string]Family

// Runtime reports whether name is one of the Go runtime's or the process's
// metrics, which client_golang's collectors export and the docs cover as
// go_* and process_*.
func Runtime(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// Merge returns the union of fs.
func Merge(fs ...Families) Families {
	out := Families{}
	for _, f := range fs {
		for name, fam := range f {
			out[name] = fam
		}
	}
	return out
}

// Manager returns the families hydra-manager serves on /metrics, built as
// cmd/hydra-manager's serve builds them: a registry with the Go and process
// collectors, the core's metrics (manager.New) and the HTTP layer's
// (httpapi.New). dir holds a scratch bbolt file.
func Manager(dir string) (Families, error) {
	reg := newRegistry()
	rec := &recorder{Registerer: reg}
	b, err := store.OpenBolt(filepath.Join(dir, "metricsdoc.db"))
	if err != nil {
		return nil, err
	}
	st := store.New(b)
	defer st.Close() //nolint:errcheck // a scratch file
	m, err := manager.New(manager.Options{Store: st, Registerer: rec})
	if err != nil {
		return nil, err
	}
	h, err := httpapi.New(m, httpapi.Options{Registry: reg})
	if err != nil {
		return nil, err
	}
	// The HTTP layer registers on the registry itself; one request gives
	// its vectors a series, so that Gather shows them.
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	return collect(reg, rec)
}

// Node returns the families hydra-csi --mode=node serves on /metrics of
// --health-address, built as cmd/hydra-csi/app's run and startNode build
// them: the Go and process collectors, the cache's and the agent's
// metrics, the views' spare-tree counter, and the peer server's (with
// --peer-listen). dir holds a scratch cache root.
func Node(dir string) (Families, error) {
	reg := newRegistry()
	rec := &recorder{Registerer: reg}
	c, err := cache.New(cache.Options{Root: filepath.Join(dir, "cache"), Reader: source.NewReaderMux(source.FetchOptions{}), Registerer: rec})
	if err != nil {
		return nil, err
	}
	cl, err := client.New("http://127.0.0.1:1")
	if err != nil {
		return nil, err
	}
	views := cache.NewViews(c.Layout())
	if err := views.EnableSpares(cache.SpareOptions{Hold: c.Hold, Registerer: rec}); err != nil {
		return nil, err
	}
	_, err = agent.New(agent.Options{Node: "metricsdoc", Client: cl, Cache: c, Views: views, Registerer: rec})
	if err != nil {
		return nil, err
	}
	_, err = peer.NewServer(peer.ServerOptions{Store: holdsNothing{}, Rate: 1, Streams: 1, Registerer: rec})
	if err != nil {
		return nil, err
	}
	return collect(reg, rec)
}

// holdsNothing stands in for the node's store behind the peer server:
// only the server's metrics matter here.
type holdsNothing struct{}

func (holdsNothing) OpenRange(context.Context, peer.RangeRequest, time.Duration) (io.ReadCloser, error) {
	return nil, peer.ErrNotHeld
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// recorder passes registrations on and keeps every collector's
// descriptors and kind: a vector with no series yet is missing from
// Gather, but not from here.
type recorder struct {
	prometheus.Registerer
	fams []Family
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		f, err := familyOf(d)
		if err != nil {
			return err
		}
		f.Type = vectorType(c)
		r.fams = append(r.fams, f)
	}
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// vectorType is a vector's metric type; "" for other collectors, whose
// type Gather tells.
func vectorType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// client_golang's Desc has no accessors; its String names the family and
// its variable labels.
var (
	descName   = regexp.MustCompile(`fqName: "([^"]*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}`)
)

func familyOf(d *prometheus.Desc) (Family, error) {
	s := d.String()
	name, labels := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
	if name == nil || labels == nil {
		return Family{}, fmt.Errorf("metricsdoc: cannot read descriptor %s", s)
	}
	f := Family{Name: name[1]}
	for _, l := range strings.Split(labels[1], ",") {
		if l = strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"); l != "" {
			f.Labels = append(f.Labels, l)
		}
	}
	sort.Strings(f.Labels)
	return f, nil
}

// collect merges what the recorder saw with what the registry gathers.
func collect(reg *prometheus.Registry, rec *recorder) (Families, error) {
	out := Families{}
	for _, f := range rec.fams {
		out[f.Name] = f
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	for _, mf := range mfs {
		f := out[mf.GetName()]
		f.Name = mf.GetName()
		f.Type = strings.ToLower(mf.GetType().String())
		f.Series = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(f.Labels, lp.GetName()) {
					f.Labels = append(f.Labels, lp.GetName())
				}
			}
		}
		sort.Strings(f.Labels)
		out[f.Name] = f
	}
	var errs []error
	for name, f := range out {
		if f.Type == "" {
			errs = append(errs, fmt.Errorf("metricsdoc: %s: type unknown (not a vector, and nothing gathered)", name))
		}
	}
	return out, errors.Join(errs...)
}
