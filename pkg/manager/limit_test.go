package manager_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/release"
)

// largeBody is a publish of version over httpapi.LargePublishBody.
func largeBody(t *testing.T, version string) []byte {
	t.Helper()
	files := make([]release.File, 20000)
	for i := range files {
		files[i] = release.File{Path: fmt.Sprintf("part-%06d.bin", i), Size: 1 << 20, ETag: `"0123456789abcdef0123456789abcdef"`}
	}
	body, err := json.Marshal(api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: "data", Source: "s3://bucket/data/", Manifest: release.Manifest{Files: files}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= httpapi.LargePublishBody {
		t.Fatalf("test body of %d bytes is not a large publish", len(body))
	}
	return body
}

// startPublish sends body as a publish of channel "big" and returns where
// its status (or error) arrives.
func startPublish(ctx context.Context, t *testing.T, url string, body io.Reader, size int) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/channels/big/releases", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(size)
	req.Header.Set("Content-Type", "application/json")
	done := make(chan string, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err.Error()
			return
		}
		_ = resp.Body.Close()
		done <- resp.Status
	}()
	return done
}

// gauge reads one gauge from the manager's /metrics.
func gauge(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// waitGauge polls a gauge until it reads want, failing if a publish that
// should be waiting ends first.
func waitGauge(ctx context.Context, t *testing.T, url, name string, want float64, mustWait <-chan string) {
	t.Helper()
	for gauge(t, url, name) != want {
		select {
		case st := <-mustWait:
			t.Fatalf("a large publish ran (%s) while another was being read, before %s reached %v", st, name, want)
		case <-ctx.Done():
			t.Fatalf("%s never reached %v", name, want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestLargePublishesTakeTurns: with --max-concurrent-publishes 1, a large
// publish waits while another's body is being read; a small one does not.
func TestLargePublishesTakeTurns(t *testing.T) {
	tm := managertest.Start(t, managertest.Options{HTTP: httpapi.Options{MaxConcurrentPublishes: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mustCreate(t, tm.Manager, "big", release.Config{Keep: 100})
	const running, waiting = "hydra_manager_large_publishes_running", "hydra_manager_large_publishes_waiting"

	// v1's body arrives all but its last byte, and stays so.
	first := largeBody(t, "v1")
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	go func() { _, _ = pw.Write(first[:len(first)-1]) }()
	firstDone := startPublish(ctx, t, tm.URL, pr, len(first))
	waitGauge(ctx, t, tm.URL, running, 1, nil)

	second := largeBody(t, "v2")
	secondDone := startPublish(ctx, t, tm.URL, bytes.NewReader(second), len(second))
	waitGauge(ctx, t, tm.URL, waiting, 1, secondDone)

	mustPublish(t, tm.Manager, "big", "v3", false) // small: no turn needed

	if _, err := pw.Write(first[len(first)-1:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	for name, done := range map[string]<-chan string{"v1": firstDone, "v2": secondDone} {
		if st := <-done; st != "201 Created" {
			t.Fatalf("publish of %s: %s, want 201 Created", name, st)
		}
	}
	// Publish order: the small v3 went first, then the large ones in turn.
	wantVersions(t, tm.Manager, "big", "v3", "v1", "v2")
}
