package manager

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hydra-csi/hydra/pkg/release"
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
	storeErrors     *prometheus.CounterVec

	// The Kubernetes rollout controller's.
	rolloutPasses prometheus.Counter
	rolloutErrors prometheus.Counter
	podMoves      prometheus.Counter
	moveSeconds   prometheus.Histogram
	podsByPhase   *prometheus.GaugeVec
	rollbacks     prometheus.Counter
	// Kubernetes Events the controller records, by reason (events.go).
	events *prometheus.CounterVec

	// Peer distribution, as the fresh node reports tell it.
	peerNodes        prometheus.Gauge
	nodeFetchedBytes *prometheus.GaugeVec
	nodePeerServed   prometheus.Gauge

	// Warm channels: pairs of a channel and a node it is warm on.
	warmNodes *prometheus.GaugeVec
	// Node label patches of the labeller (nodelabels.go), by result.
	nodeLabelPatches *prometheus.CounterVec
}

// The label values each vector starts with (at 0), so that its series
// exist from the first scrape: an alert on increase() then sees the first
// event, and a dashboard shows 0 rather than "no data".
var (
	publishResults = []string{"ok", "invalid", "exists", "no_channel", "error"}
	headMoveCauses = []string{"publish", "set", "rollback", "pin", "unpin"}
	retainReasons  = []string{reasonKeep, reasonMaxAge}
	rolloutPhases  = []release.Phase{release.PhaseDraining, release.PhaseFlipping, release.PhaseReloading, release.PhaseRollingBack}
)

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
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_store_errors_total", Help: "Failed operations of the state store (bbolt or Consul), by operation.",
		}, []string{"op"}),
		rolloutPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_rollout_passes_total", Help: "Decision passes of the rollout controller.",
		}),
		rolloutErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_rollout_errors_total", Help: "Rollout passes that failed (retried on the next).",
		}),
		podMoves: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_rollout_pod_moves_total", Help: "Pods the rollout controller started to move.",
		}),
		moveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydra_manager_rollout_pod_move_duration_seconds", Help: "From a pod's drain to its move's end (done or rolled back).",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		podsByPhase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hydra_manager_rollout_pods", Help: "Pods being moved, by phase (draining, flipping, reloading, rollingBack).",
		}, []string{"phase"}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_manager_rollout_rollbacks_total", Help: "Pods rolled back after failing; each pauses its channel.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_events_total", Help: "Kubernetes Events recorded on pods and PVCs, by reason.",
		}, []string{"reason"}),
		peerNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_peer_nodes", Help: "Nodes with a fresh report that serve peers (--peer-listen).",
		}),
		nodeFetchedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hydra_manager_node_fetched_bytes", Help: "Bytes of the releases they report that nodes with fresh reports fetched, by source (peers, origin), since each node plugin started.",
		}, []string{"source"}),
		nodePeerServed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hydra_manager_node_peer_served_bytes", Help: "Bytes nodes with fresh reports served to peers, since each node plugin started.",
		}),
		warmNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hydra_manager_warm_nodes", Help: "Warm channels times the fresh nodes their selector matches, by whether the node reports the head ready.",
		}, []string{"head"}),
		nodeLabelPatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_manager_node_label_patches_total", Help: "Patches of the channels' ready labels on Nodes, by result.",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{met.publishes, met.publishSeconds, met.retained, met.sweptBlobs,
		met.leader, met.longPolls, met.snapshotIndex, met.nodeReports, met.headMoves, met.retentionErrors, met.storeErrors,
		met.rolloutPasses, met.rolloutErrors, met.podMoves, met.moveSeconds, met.podsByPhase, met.rollbacks, met.events,
		met.peerNodes, met.nodeFetchedBytes, met.nodePeerServed, met.warmNodes, met.nodeLabelPatches} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	met.initLabels()
	return met, nil
}

// initLabels creates every known series of the vectors at 0.
func (met *metrics) initLabels() {
	for _, v := range publishResults {
		met.publishes.WithLabelValues(v)
	}
	for _, v := range headMoveCauses {
		met.headMoves.WithLabelValues(v)
	}
	for _, v := range retainReasons {
		met.retained.WithLabelValues(v)
	}
	for _, v := range storeOps {
		met.storeErrors.WithLabelValues(v)
	}
	for _, p := range rolloutPhases {
		met.podsByPhase.WithLabelValues(string(p))
	}
	for _, v := range eventReasons {
		met.events.WithLabelValues(v)
	}
	for _, v := range fetchSources {
		met.nodeFetchedBytes.WithLabelValues(v)
	}
	for _, v := range warmHeadStates {
		met.warmNodes.WithLabelValues(v)
	}
	for _, v := range []string{"ok", "error"} {
		met.nodeLabelPatches.WithLabelValues(v)
	}
}

// warmHeadStates label hydra_manager_warm_nodes.
var warmHeadStates = []string{"ready", "missing"}

// observeWarm counts, over the fresh reports, the nodes each channel is
// warm on (warm: node → channel → medium), by whether the node reports
// the channel's head ready.
func (met *metrics) observeWarm(warm map[string]map[string]string, nodes []release.NodeStatus, channels []release.DesiredChannel,
	fresh func(release.NodeStatus) bool) {
	heads := make(map[string]string, len(channels))
	for _, ch := range channels {
		heads[ch.Name] = ch.Head
	}
	var ready, missing int
	for _, n := range nodes {
		if len(warm[n.Node]) == 0 || !fresh(n) {
			continue
		}
		have := map[string]bool{}
		for _, p := range n.Releases {
			if p.State == release.StateReady && p.Version == heads[p.Channel] {
				have[p.Channel] = true
			}
		}
		for ch := range warm[n.Node] {
			if have[ch] {
				ready++
			} else {
				missing++
			}
		}
	}
	met.warmNodes.WithLabelValues("ready").Set(float64(ready))
	met.warmNodes.WithLabelValues("missing").Set(float64(missing))
}

// fetchSources label hydra_manager_node_fetched_bytes.
var fetchSources = []string{"peers", "origin"}

// observePeers sets the peer gauges from the reports that are fresh.
func (met *metrics) observePeers(nodes []release.NodeStatus, fresh func(release.NodeStatus) bool) {
	var serving, fromPeers, fromOrigin, served int64
	for _, n := range nodes {
		if !fresh(n) {
			continue
		}
		if n.Peer != nil {
			serving++
		}
		served += n.PeerServedBytes
		for _, p := range n.Releases {
			fromPeers += p.BytesFromPeers
			fromOrigin += p.BytesFromOrigin
		}
	}
	met.peerNodes.Set(float64(serving))
	met.nodeFetchedBytes.WithLabelValues("peers").Set(float64(fromPeers))
	met.nodeFetchedBytes.WithLabelValues("origin").Set(float64(fromOrigin))
	met.nodePeerServed.Set(float64(served))
}
