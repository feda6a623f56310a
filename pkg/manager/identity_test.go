package manager_test

import (
	"context"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestDesiredIdentities: the desired state names which publish the head
// is, so that a node tells a version name published again after its
// channel was deleted and recreated (seq 1 both times) from the first.
func TestDesiredIdentities(t *testing.T) {
	m, _, clk := newManager(t)
	ctx := context.Background()
	var seen []release.Identity
	for i := range 2 {
		mustCreate(t, m, "again", release.Config{})
		mustPublish(t, m, "again", "v1", true)
		sum, err := m.GetRelease(ctx, "again", "v1")
		if err != nil {
			t.Fatal(err)
		}
		want := sum.Identity()
		d := pollUntil(t, m, "node-a", func(d release.Desired) bool {
			return len(d.Channels) == 1 && !want.IsZero() && want.Matches(d.Channels[0].HeadIdentity)
		})
		if id := d.Channels[0].HeadIdentity; id.IsZero() || (i > 0 && id.Matches(seen[0])) {
			t.Fatalf("publish %d of again/v1: head identity %s, first publish's %v", i+1, id, seen)
		}
		seen = append(seen, want)
		if err := m.DeleteChannel(ctx, "again"); err != nil {
			t.Fatal(err)
		}
		clk.Step(time.Second)
	}
}
