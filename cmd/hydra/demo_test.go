package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestDemo runs `hydra demo` (what `make demo` runs) and checks the story it
// tells: staged, mounted, flipped, the old file still readable, cleaned up.
func TestDemo(t *testing.T) {
	testenv.RequireRoot(t, "hydra demo bind-mounts a volume as kubelet would")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h := &harness{t: t, env: map[string]string{}}
	r := h.runCtx(ctx, nil, "demo")
	if r.code != 0 {
		t.Fatalf("hydra demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"NodeStageVolume: 2026-01-01T00-00-00 downloaded",
		"the pod sees data/current -> releases/2026-01-01T00-00-00",
		"the pod sees data/current -> releases/2026-02-01T00-00-00",
		`still reads the old release: "weights of 2026-01-01T00-00-00"`,
		"NodeUnpublishVolume, NodeUnstageVolume, DeleteVolume",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), "hydra-demo-") {
		t.Fatal("the demo left a mount behind")
	}
}
