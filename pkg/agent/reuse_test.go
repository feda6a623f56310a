package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestAgentFlipsToReusedName: views that moved on from v1 are flipped
// back when v1, removed by retention, is published again with new
// content: to the new content, which the node downloads although it still
// holds the first v1.
func TestAgentFlipsToReusedName(t *testing.T) {
	w := newWorldWith(t, managertest.Options{RetentionInterval: 100 * time.Millisecond})
	ctx := context.Background()
	if _, err := w.client.CreateChannel(ctx, "re", release.Config{Keep: 1, NodeKeep: 2}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "re", "v1", []byte("content A"))
	a := w.startAgent(t, w.client)
	if err := a.Ensure(ctx, "re", "v1", nil); err != nil {
		t.Fatal(err)
	}
	view, err := w.views.Create(cache.ViewRecord{VolumeID: "pvc", PodUID: "pod-1", Channel: "re"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	a.Poke()
	reads := func(want string) func() bool {
		return func() bool {
			got, err := os.ReadFile(filepath.Join(view.Path, "current", "d", "file.bin"))
			return err == nil && string(got) == want
		}
	}
	w.publish(t, "re", "v2", []byte("content B"))
	eventually(t, "the view on v2", reads("content B"))
	eventually(t, "retention to remove v1 from the manager", func() bool {
		rels, err := w.client.ListReleases(ctx, "re")
		return err == nil && !slices.ContainsFunc(rels, func(s release.Summary) bool { return s.Version == "v1" })
	})
	if !w.cache.Stored("re", "v1") {
		t.Fatal("the node no longer holds the first v1 (nodeKeep 2): the test shows nothing")
	}

	w.publish(t, "re", "v1", []byte("content C"))
	eventually(t, "the view on the new v1", reads("content C"))
}
