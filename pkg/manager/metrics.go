package manager

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the core; the HTTP layer has its own request metrics.
type metrics struct {
	publishes       *prometheus.CounterVec
	publishSeconds  prometheus.Histogram
	retained        *prometheus.CounterVec
	sweptBlobs      prometheus.Counter
	leader          prometheus.Gauge
	longPolls       prometheus.Gauge
	snapshotIndex   prometheus.Gauge
	nodeReports     prometheus.Counter
	headMoves       *prometheus.CounterVec
	retentionErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	met := &metrics{
		publishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_publishes_total", Help: "Releases published, by result.",
		}, []string{"result"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydra_manager_publish_duration_seconds", Help: "Time to store a release and move the head.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		retained: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_retention_deleted_total", Help: "Releases removed by retention, by reason.",
		}, []string{"reason"}),
		sweptBlobs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_manifest_blobs_swept_total", Help: "Unreferenced manifest blobs removed.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_leader", Help: "1 while this replica runs the background loops.",
		}),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_desired_longpolls", Help: "Node long-polls waiting for a change.",
		}),
		snapshotIndex: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_desired_index", Help: "Store index of the state nodes are served.",
		}),
		nodeReports: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_node_reports_total", Help: "Node status reports stored.",
		}),
		headMoves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_head_moves_total", Help: "Head moves, by cause (publish, set, rollback, pin, unpin).",
		}, []string{"cause"}),
		retentionErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_retention_errors_total", Help: "Retention passes that failed.",
		}),
	}
	for _, c := range []prometheus.Collector{met.publishes, met.publishSeconds, met.retained, met.sweptBlobs,
		met.leader, met.longPolls, met.snapshotIndex, met.nodeReports, met.headMoves, met.retentionErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return met, nil
}
