package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestPull publishes from MinIO and pulls the release into a directory that
// appears only when complete; an interrupted pull resumes.
func TestPull(t *testing.T) {
	m := startS3(t)
	files := map[string][]byte{
		"model/weights.bin":    randomBytes(9<<20 + 123),
		"model/shards/part-0":  randomBytes(1000),
		"model/empty":          {},
		"config/settings.json": []byte(`{"threads": 8}`),
	}
	for p, b := range files {
		m.Put(t, "datasets", "rel/"+p, b)
	}
	h := newHarness(t)
	h.createChannel("pulled")
	h.ok("publish", "pulled", "--version", "v1",
		"--dataset", "model=s3://datasets/rel/model/", "--dataset", "config=s3://datasets/rel/config/")

	// Pull through a slow proxy and interrupt the first attempt.
	proxy := testenv.StartFaultProxy(t, m.Endpoint)
	proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 2 * time.Millisecond, Seed: 1})
	t.Setenv("AWS_ENDPOINT_URL_S3", proxy.URL)
	dir := filepath.Join(t.TempDir(), "out")
	// Cancelling the context is what Ctrl-C does (signal.NotifyContext).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel)
	r := h.runCtx(ctx, nil, "pull", "pulled", dir)
	checkFailure(t, []string{"pull"}, r, "interrupted", "run the same command again to resume")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s exists after an interrupted pull: %v", dir, err)
	}
	first := proxy.BytesServed()
	if first == 0 {
		t.Fatal("the interrupted pull fetched nothing: the test exercised no resume")
	}
	proxy.SetFaults(testenv.Faults{})
	h.ok("pull", "pulled@v1", dir)
	var total int64
	for p, want := range files {
		total += int64(len(want))
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, err %v; want the %d published", p, len(got), err, len(want))
		}
	}
	// The resumed pull did not fetch again what the first one had kept:
	// at most the parts in flight at the interruption are fetched twice.
	if served := proxy.BytesServed(); served > total+16*8<<20 {
		t.Fatalf("pulls fetched %d bytes for a %d-byte release", served, total)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".out.hydra-pull*")); len(leftovers) != 0 {
		t.Fatalf("work directory left behind: %v", leftovers)
	}
	h.fails([]string{"pull", "pulled", dir}, "already exists")
	h.fails([]string{"pull", "Bad_Name", dir + "2"}, "DNS-1123")
	h.fails([]string{"pull", "pulled@v9", dir + "3"}, "not found")
}
