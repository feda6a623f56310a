package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/release"
)

type metrics struct {
	errors   *prometheus.CounterVec
	flips    prometheus.Counter
	releases *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_agent_errors_total", Help: "Agent errors by operation (poll, report, download, access: a view's credentials cannot read the release it should flip to).",
		}, []string{"op"}),
		flips: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_agent_flips_total", Help: "View flips applied.",
		}),
		releases: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hydra_agent_releases", Help: "Releases on the node by state.",
		}, []string{"state"}),
	}
	// Every known series exists from the start, at 0: an alert on
	// increase() sees the first error, a panel shows 0, not "no data".
	for _, op := range errorOps {
		m.errors.WithLabelValues(op)
	}
	m.setReleases(nil)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.errors, m.flips, m.releases} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// errorOps are the op labels of hydra_agent_errors_total.
var errorOps = []string{"poll", "report", "download"}

var releaseStates = []release.State{release.StatePending, release.StateDownloading, release.StateReady, release.StateFailed}

// setReleases counts the reported releases by state, every state included.
func (m *metrics) setReleases(rels []release.Progress) {
	n := map[release.State]int{}
	for _, p := range rels {
		n[p.State]++
	}
	for _, s := range releaseStates {
		m.releases.WithLabelValues(string(s)).Set(float64(n[s]))
	}
}
