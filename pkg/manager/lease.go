package manager

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease configures the Kubernetes Lease the rollout controller holds on
// top of the store's leadership. A bbolt store's leadership only spans one
// process; two manager pods (a Deployment's surge, a node that is slow to
// die) must still never run two controllers, so in a cluster on bbolt the
// controller also takes a Lease. With Consul, the store's lock is enough.
type Lease struct {
	Namespace, Name string
	// Identity names this replica in the Lease (pod name, hostname).
	Identity string
	// Duration, Renew and Retry are client-go's LeaseDuration,
	// RenewDeadline and RetryPeriod; zero picks 15s, 10s, 2s.
	Duration, Renew, Retry time.Duration
}

// runRolloutsLeased runs the controller while this replica holds the
// Lease, campaigning again after a loss, until ctx ends.
func (m *Manager) runRolloutsLeased(ctx context.Context) {
	l := *m.opts.Lease
	if l.Duration <= 0 {
		l.Duration, l.Renew, l.Retry = 15*time.Second, 10*time.Second, 2*time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: l.Namespace, Name: l.Name},
		Client:     m.opts.Kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: l.Identity},
	}
	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: lock, LeaseDuration: l.Duration, RenewDeadline: l.Renew, RetryPeriod: l.Retry,
			// A controller that stops (store leadership lost, shutdown)
			// hands the Lease over at once instead of after Duration.
			ReleaseOnCancel: true,
			Name:            l.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					m.logger().Info("holding the rollout Lease", "lease", l.Namespace+"/"+l.Name, "identity", l.Identity)
					m.runRollouts(ctx)
				},
				OnStoppedLeading: func() {
					m.logger().Info("released the rollout Lease", "lease", l.Namespace+"/"+l.Name)
				},
			},
		})
		if err != nil {
			m.logger().Error(err, "rollout Lease: bad configuration; the rollout controller does not run")
			return
		}
		elector.Run(ctx)
	}
}
