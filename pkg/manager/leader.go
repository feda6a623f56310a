package manager

import (
	"context"
	"time"
)

// leaderLoop campaigns for leadership and, while leading, runs retention
// and the manifest sweep every RetentionInterval. A lost leadership (Consul
// session gone) sends it back to campaigning.
func (m *Manager) leaderLoop(ctx context.Context) {
	for ctx.Err() == nil {
		lead, err := m.store.Campaign(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.logger().Error(err, "campaigning for leadership; retrying")
				m.sleep(ctx, time.Second)
			}
			continue
		}
		m.setLeader(true)
		m.logger().Info("leading: running background loops")
		m.lead(ctx, lead.Lost())
		m.setLeader(false)
		resignCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = lead.Resign(resignCtx)
		cancel()
		m.logger().Info("no longer leading")
	}
}

func (m *Manager) lead(ctx context.Context, lost <-chan struct{}) {
	ticker := m.clock.NewTicker(m.opts.RetentionInterval)
	defer ticker.Stop()
	if m.opts.Kube != nil {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{}, 2)
		go func() {
			defer func() { done <- struct{}{} }()
			if m.opts.Lease != nil {
				m.runRolloutsLeased(ctx)
			} else {
				m.runRollouts(ctx)
			}
		}()
		// The ready labels are idempotent patches: the store's
		// leadership is enough, no Lease needed.
		go func() { defer func() { done <- struct{}{} }(); m.runNodeLabels(ctx) }()
		defer func() { cancel(); <-done; <-done }()
	}
	// The first pass waits one interval: a replica that just took over
	// gives the node reports time to arrive before judging what is in use.
	for {
		select {
		case <-ticker.C():
			m.backgroundPass(ctx)
		case <-lost:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (m *Manager) backgroundPass(ctx context.Context) {
	if _, err := m.ApplyRetention(ctx); err != nil && ctx.Err() == nil {
		m.metrics.retentionErrors.Inc()
		m.logger().Error(err, "retention pass failed")
	}
	n, err := m.store.SweepManifests(ctx, m.now().Add(-m.opts.SweepGrace))
	if err != nil && ctx.Err() == nil {
		m.logger().Error(err, "manifest sweep failed")
	}
	m.metrics.sweptBlobs.Add(float64(n))
}

// setLeader records in the hydra_manager_leader gauge whether this replica
// runs the leader's loops now.
func (m *Manager) setLeader(v bool) {
	if v {
		m.metrics.leader.Set(1)
	} else {
		m.metrics.leader.Set(0)
	}
}
