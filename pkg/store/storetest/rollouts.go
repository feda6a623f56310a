package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// testRollouts checks the rollout controller's records: absent reads as
// empty, saves are compare-and-swap on the version read (a deposed leader
// loses), an empty rollout deletes the record, and a damaged one is refused.
func testRollouts(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	r, version, err := s.GetRollout(ctx, "c")
	if err != nil || version != 0 || len(r.Moves) != 0 || r.Channel != "c" {
		t.Fatalf("GetRollout of nothing = %+v, %d, %v", r, version, err)
	}
	r.Moves = []release.Move{{PodUID: "uid-a", PodNamespace: "ns", PodName: "a", Node: "node-1", VolumeID: "vol",
		Workload: "Deployment/ns/web", From: "v1", To: "v2", Phase: release.PhaseDraining, Since: time.Now().UTC().Truncate(time.Second), Gated: true}}
	if err := s.SaveRollout(ctx, r, 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "create over an existing record", s.SaveRollout(ctx, r, 0), store.ErrConflict)
	got, version, err := s.GetRollout(ctx, "c")
	if err != nil || version == 0 || !reflect.DeepEqual(got, r) {
		t.Fatalf("GetRollout = %+v, %d, %v; want %+v", got, version, err, r)
	}
	next := got
	next.Moves = []release.Move{got.Moves[0]}
	next.Moves[0].Phase = release.PhaseFlipping
	if err := s.SaveRollout(ctx, next, version); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "save at a stale version", s.SaveRollout(ctx, r, version), store.ErrConflict)
	all, err := s.ListRollouts(ctx)
	if err != nil || len(all) != 1 || all[0].Moves[0].Phase != release.PhaseFlipping {
		t.Fatalf("ListRollouts = %+v, %v", all, err)
	}
	bad := next
	bad.Moves = append(bad.Moves, bad.Moves[0])
	wantErr(t, "a volume moved twice", s.SaveRollout(ctx, bad, version), release.ErrInvalid)
	_, version, _ = s.GetRollout(ctx, "c")
	if err := s.SaveRollout(ctx, release.Rollout{Channel: "c"}, version); err != nil {
		t.Fatal(err)
	}
	if all, err := s.ListRollouts(ctx); err != nil || len(all) != 0 {
		t.Fatalf("ListRollouts after the last move = %+v, %v; want none", all, err)
	}
}
