package manager_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// managerOn runs a manager on s with a fake clock; retention runs only
// when a test calls ApplyRetention.
func managerOn(t *testing.T, s *store.Store) (*manager.Manager, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tm := managertest.Start(t, managertest.Options{Store: s, Clock: clk, RetentionInterval: 1000 * time.Hour})
	return tm.Manager, clk
}

// servedOld publishes v1 and v2 on a channel that keeps one release, so
// that retention removes v1 unless a node serves it, and has node-a
// report a pod on v1 with the given reportedAt.
func servedOld(t *testing.T, m *manager.Manager, reportedAt time.Time) {
	t.Helper()
	mustCreate(t, m, "c", release.Config{Keep: 1})
	mustPublish(t, m, "c", "v1", true)
	mustPublish(t, m, "c", "v2", true)
	report := release.NodeStatus{Node: "node-a", ReportedAt: reportedAt,
		Views: []release.View{{VolumeID: "pvc-1", PodName: "web-0", PodNamespace: "prod", Channel: "c", Current: "v1"}}}
	if err := m.ReportStatus(context.Background(), "node-a", report); err != nil {
		t.Fatal(err)
	}
}

// wantStale checks how node-a's report is shown: by the node list, the
// channel's node progress and its pods.
func wantStale(t *testing.T, m *manager.Manager, want bool) {
	t.Helper()
	nodes, err := m.ListNodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].Stale != want {
		t.Fatalf("ListNodes = %+v, %v; want node-a with stale=%t", nodes, err, want)
	}
	st, err := m.ChannelStatus(context.Background(), "c")
	if err != nil || len(st.Pods) != 1 || st.Pods[0].Stale != want {
		t.Fatalf("ChannelStatus pods = %+v, %v; want web-0 with stale=%t", st.Pods, err, want)
	}
}

// TestNodeLivenessIsTheManagers: a report is dated by the manager on
// receipt, whatever the node claims; while younger than the TTL it keeps
// the release its pod serves and blocks deleting the channel; past the
// TTL (the node is gone) it does neither and is shown stale.
func TestNodeLivenessIsTheManagers(t *testing.T) {
	for _, bs := range benchStores() {
		for _, tc := range []struct {
			name    string
			claimed time.Time
		}{
			{"claims 2099", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)},
			{"claims 2020", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
			{"claims nothing", time.Time{}},
		} {
			t.Run(bs.name+"/"+tc.name, func(t *testing.T) {
				m, clk := managerOn(t, bs.open(t))
				ctx := context.Background()
				servedOld(t, m, tc.claimed)
				nodes, err := m.ListNodes(ctx)
				if err != nil || len(nodes) != 1 || !nodes[0].ReportedAt.Equal(clk.Now()) {
					t.Fatalf("ListNodes = %+v, %v; want node-a reported at the manager's %s", nodes, err, clk.Now())
				}
				wantStale(t, m, false)
				if _, err := m.ApplyRetention(ctx); err != nil {
					t.Fatal(err)
				}
				wantVersions(t, m, "c", "v1", "v2")
				if err := m.DeleteChannel(ctx, "c"); !errors.Is(err, manager.ErrInUse) {
					t.Fatalf("DeleteChannel with a live pod: %v, want ErrInUse", err)
				}

				clk.Step(manager.DefaultNodeReportTTL + time.Second)
				wantStale(t, m, true)
				if _, err := m.ApplyRetention(ctx); err != nil {
					t.Fatal(err)
				}
				wantVersions(t, m, "c", "v2")
				if err := m.DeleteChannel(ctx, "c"); err != nil {
					t.Fatalf("DeleteChannel with only a stale report: %v", err)
				}
			})
		}
	}
}

// TestReportsStoredBeforeStamping: a report already in the store with a
// date of the node's own (written before reports were stamped on receipt)
// cannot stay fresh by being dated in the future, nor be stale at once by
// being dated in the past: both count from the manager's start.
func TestReportsStoredBeforeStamping(t *testing.T) {
	for _, bs := range benchStores() {
		for _, claimed := range []time.Time{time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)} {
			t.Run(fmt.Sprintf("%s/%d", bs.name, claimed.Year()), func(t *testing.T) {
				s := bs.open(t)
				m, clk := managerOn(t, s)
				st := release.NodeStatus{Node: "node-a", ReportedAt: claimed,
					Views: []release.View{{VolumeID: "pvc-1", PodName: "web-0", PodNamespace: "prod", Channel: "c", Current: "v1"}}}
				mustCreate(t, m, "c", release.Config{})
				if err := s.PutNodeStatus(context.Background(), st); err != nil {
					t.Fatal(err)
				}
				wantStale(t, m, false)
				clk.Step(manager.DefaultNodeReportTTL + time.Second)
				wantStale(t, m, true)
			})
		}
	}
}

// TestForgetNode: forgetting a node drops its report at once, before the
// TTL: its release goes to retention and the channel can be deleted.
func TestForgetNode(t *testing.T) {
	for _, bs := range benchStores() {
		t.Run(bs.name, func(t *testing.T) {
			m, _ := managerOn(t, bs.open(t))
			ctx := context.Background()
			servedOld(t, m, time.Time{})
			for _, tc := range []struct {
				node string
				want error
			}{
				{"node-b", store.ErrNotFound},
				{"Node_A", release.ErrInvalid},
			} {
				if err := m.ForgetNode(ctx, tc.node); !errors.Is(err, tc.want) {
					t.Fatalf("ForgetNode(%q) = %v, want %v", tc.node, err, tc.want)
				}
			}
			if err := m.ForgetNode(ctx, "node-a"); err != nil {
				t.Fatal(err)
			}
			if nodes, err := m.ListNodes(ctx); err != nil || len(nodes) != 0 {
				t.Fatalf("ListNodes after forgetting node-a = %+v, %v; want none", nodes, err)
			}
			if _, err := m.ApplyRetention(ctx); err != nil {
				t.Fatal(err)
			}
			wantVersions(t, m, "c", "v2")
			if err := m.DeleteChannel(ctx, "c"); err != nil {
				t.Fatalf("DeleteChannel after forgetting its only node: %v", err)
			}
		})
	}
}
