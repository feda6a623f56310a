package csi_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSpareViewTrees: once a pod of a channel runs on the node, the plugin
// keeps spare trees of its release linked ahead, and the next pod start
// takes one (counted on /metrics) and sees the release whole. Without the
// spares the counter stays at 0 and the test fails.
func TestSpareViewTrees(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "spares")
	files := map[string][]byte{"a.bin": pattern(1, 4096), "dir/b.bin": pattern(2, 100), "dir/sub/c.bin": pattern(3, 0)}
	w.publish(t, "spares", "v1", files)
	addr := freeAddr(t)
	p := startPlugin(t, w, pluginConfig{args: []string{"--health-address=" + addr}})

	first := p.createVolume(t, "first", map[string]string{"channel": "spares"})
	podA := p.pod("a")
	p.publish(t, first, p.stage(t, first), podA)
	spares := filepath.Join(p.root, "views", ".spares", "spares")
	deadline := time.Now().Add(30 * time.Second)
	for countSpares(t, spares) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no 2 spares 30 s after the first pod start (%d)", spares, countSpares(t, spares))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := scrapeCounter(t, addr, `hydra_view_trees_total{source="spare"}`); n != 0 {
		t.Fatalf("the first pod start took a spare (%v): there was none", n)
	}

	second := p.createVolume(t, "second", map[string]string{"channel": "spares"})
	podB := p.pod("b")
	p.publish(t, second, p.stage(t, second), podB)
	if n := scrapeCounter(t, addr, `hydra_view_trees_total{source="spare"}`); n != 1 {
		t.Errorf("spare trees taken: %v, want 1", n)
	}
	for _, pd := range []pod{podA, podB} {
		for name, data := range files {
			wantFile(t, filepath.Join(pd.target, "current", dataset, name), data)
		}
	}
}

// countSpares counts the finished spares in a channel's spare directory.
func countSpares(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			n++
		}
	}
	return n
}
