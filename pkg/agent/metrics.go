package agent

import "github.com/prometheus/client_golang/prometheus"

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
