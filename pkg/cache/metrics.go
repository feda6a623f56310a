package cache

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	bytes     prometheus.Counter
	linked    prometheus.Counter
	seconds   prometheus.Histogram
	downloads *prometheus.CounterVec
	removed   *prometheus.CounterVec
	fetched   *prometheus.CounterVec
	fallbacks *prometheus.CounterVec
	liars     prometheus.Counter
	evictions *prometheus.CounterVec
	evicted   *prometheus.CounterVec
}

// Sources of fetched bytes (hydra_cache_fetched_bytes_total).
const (
	sourcePeer   = "peer"
	sourceOrigin = "origin"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_cache_downloaded_bytes_total", Help: "Bytes fetched from sources and written to the cache.",
		}),
		linked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_cache_linked_bytes_total", Help: "Bytes of unchanged files hardlinked from stored releases instead of downloaded.",
		}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "hydra_cache_download_duration_seconds", Help: "Time to download, verify and install a release.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 16),
		}),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_cache_downloads_total", Help: "Release downloads by result.",
		}, []string{"result"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_cache_removed_total",
			Help: "Stored releases and partial downloads removed from the node, by reason (retention, replaced, channel-deleted, abandoned-partial, evicted).",
		}, []string{"reason"}),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_cache_fetched_bytes_total",
			Help: "Bytes of parts fetched whole and written to the cache, by source (peer, origin).",
		}, []string{"source"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_peer_fallbacks_total",
			Help: "Parts a named peer did not send, by reason (not-held, not-yet, busy, refused, slow, bad-answer, unreachable); the next peer or the origin sent them.",
		}, []string{"reason"}),
		liars: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hydra_peer_verify_failures_total",
			Help: "Peers caught sending bytes that fail verification (one per peer and file; the log names the peer); the peer is avoided for the release and the file fetched again from the origin.",
		}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_cache_evictions_total",
			Help: "Releases nothing on the node needed, evicted to make room for a download, by tier (disk, memory) and reason (watermark, quota).",
		}, []string{"tier", "reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_cache_evicted_bytes_total",
			Help: "Bytes of the releases evicted (their manifests' sizes), by tier (disk, memory) and reason (watermark, quota).",
		}, []string{"tier", "reason"}),
	}
	// Both results exist from the first scrape, at 0, for increase() alerts.
	m.downloads.WithLabelValues("ok")
	m.downloads.WithLabelValues("error")
	for _, r := range []string{removedRetention, removedReplaced, removedChannel, removedPartial, removedEvicted} {
		m.removed.WithLabelValues(r)
	}
	for _, tr := range [][2]string{{tierDisk, evictWatermark}, {tierDisk, evictQuota}, {tierMemory, evictWatermark}} {
		m.evictions.WithLabelValues(tr[0], tr[1])
		m.evicted.WithLabelValues(tr[0], tr[1])
	}
	m.fetched.WithLabelValues(sourcePeer)
	m.fetched.WithLabelValues(sourceOrigin)
	for _, r := range fallbackReasons {
		m.fallbacks.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bytes, m.linked, m.seconds, m.downloads, m.removed, m.fetched, m.fallbacks, m.liars, m.evictions, m.evicted} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(err error, d time.Duration) {
	if err != nil {
		m.downloads.WithLabelValues("error").Inc()
		return
	}
	m.downloads.WithLabelValues("ok").Inc()
	m.seconds.Observe(d.Seconds())
}
