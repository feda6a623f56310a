package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/agent"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// world is a real manager, a real MinIO, and one node's cache and views.
type world struct {
	m      *testenv.MinIO
	client *client.Client
	cache  *cache.Cache
	views  *cache.Views
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, managertest.Options{})
}

// newWorldWith is newWorld with a manager run with opts.
func newWorldWith(t *testing.T, opts managertest.Options) *world {
	t.Helper()
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	m.CreateBucket(t, "data")
	mgr := managertest.Start(t, opts)
	cl, err := client.New(mgr.URL)
	if err != nil {
		t.Fatal(err)
	}
	r, err := source.NewReader(context.Background(), release.SchemeS3, source.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c, err := cache.New(cache.Options{Root: root, Reader: r})
	if err != nil {
		t.Fatal(err)
	}
	return &world{m: m, client: cl, cache: c, views: cache.NewViews(c.Layout())}
}

// publish uploads one file as version v of channel and publishes it.
func (w *world) publish(t *testing.T, channel, v string, body []byte) {
	t.Helper()
	w.m.Put(t, "data", channel+"/"+v+"/file.bin", body)
	lister, err := source.NewS3(context.Background(), source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := release.ParseSource("s3://data/" + channel + "/" + v + "/")
	man, err := lister.List(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.client.Publish(context.Background(), channel, api.PublishRequest{Version: v,
		Datasets: []release.Dataset{{Name: "d", Source: src.String(), Manifest: man}}})
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) startAgent(t *testing.T, cl *client.Client) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Options{Node: "node-a", Client: cl, Cache: w.cache, Views: w.views,
		ReportInterval: 50 * time.Millisecond, IdleReport: 200 * time.Millisecond, PollWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentFollowsHead: with a view of a channel on the node, every new
// head is downloaded in the background while the view keeps serving its
// release (the channel's rollout is paused, so the view is not moved);
// progress and views reach the manager; node retention keeps nodeKeep
// releases plus what views use.
func TestAgentFollowsHead(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.client.CreateChannel(ctx, "idx", release.Config{NodeKeep: 1}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "idx", "v1", []byte("one"))
	a := w.startAgent(t, w.client)
	// What a NodeStage + NodePublish would do: stage the head, make a view.
	if err := a.Ensure(ctx, "idx", "v1", nil); err != nil {
		t.Fatal(err)
	}
	view, err := w.views.Create(cache.ViewRecord{VolumeID: "pvc-1", PodUID: "pod-1", PodName: "web-0", PodNamespace: "prod", Channel: "idx"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	a.Poke()
	if _, err := w.client.Pause(ctx, "idx", "hold the view on v1"); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "idx", "v2", []byte("two"))
	eventually(t, "v2 downloaded", func() bool { return w.cache.Stored("idx", "v2") })
	w.publish(t, "idx", "v3", []byte("three"))
	eventually(t, "v3 downloaded and v2 collected", func() bool {
		return w.cache.Stored("idx", "v3") && !w.cache.Stored("idx", "v2")
	})
	if !w.cache.Stored("idx", "v1") {
		t.Fatal("v1, which the view serves, was removed")
	}
	got, err := os.ReadFile(filepath.Join(view.Path, "current", "d", "file.bin"))
	if err != nil || !bytes.Equal(got, []byte("one")) {
		t.Fatalf("the view no longer serves v1: %q, %v", got, err)
	}
	eventually(t, "the manager to see the node's report", func() bool {
		st, err := w.client.ChannelStatus(ctx, "idx")
		if err != nil || len(st.Pods) != 1 || st.Pods[0].Current != "v1" || st.Pods[0].PodName != "web-0" {
			return false
		}
		for _, n := range st.Nodes {
			for _, p := range n.Releases {
				if n.Node == "node-a" && p.Version == "v3" && p.State == release.StateReady && p.BytesDone == 5 {
					return true
				}
			}
		}
		return false
	})
}

// TestAgentWithoutManager: with the manager unreachable the agent keeps
// the node's views and releases as they are and reports nothing wrong to
// the pods.
func TestAgentWithoutManager(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.client.CreateChannel(ctx, "idx", release.Config{}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "idx", "v1", []byte("one"))
	rel, err := w.client.GetManifest(ctx, "idx", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cache.Ensure(ctx, rel); err != nil {
		t.Fatal(err)
	}
	view, err := w.views.Create(cache.ViewRecord{VolumeID: "pvc-1", PodUID: "pod-1", Channel: "idx"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	dead, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	a := w.startAgent(t, dead)
	a.Poke()
	time.Sleep(500 * time.Millisecond) // several poll and report attempts fail meanwhile
	got, err := os.ReadFile(filepath.Join(view.Path, "current", "d", "file.bin"))
	if err != nil || string(got) != "one" {
		t.Fatalf("view broken while the manager is down: %q, %v", got, err)
	}
	st, err := a.Status()
	if err != nil || len(st.Views) != 1 || st.Views[0].Current != "v1" || !w.cache.Stored("idx", "v1") {
		t.Fatalf("status while the manager is down: %+v, %v", st, err)
	}
}

// TestAgentAppliesPlannedFlips: without a Kubernetes API the manager moves
// views to a new head one at a time once it is ready on the node; the
// agent applies each flip and reports it, until every view serves the head.
func TestAgentAppliesPlannedFlips(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.client.CreateChannel(ctx, "flip", release.Config{}); err != nil {
		t.Fatal(err)
	}
	w.publish(t, "flip", "v1", []byte("one"))
	a := w.startAgent(t, w.client)
	if err := a.Ensure(ctx, "flip", "v1", nil); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, pod := range []string{"pod-1", "pod-2", "pod-3"} {
		v, err := w.views.Create(cache.ViewRecord{VolumeID: "pvc", PodUID: pod, Channel: "flip"}, "v1")
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, v.Path)
	}
	a.Poke()
	w.publish(t, "flip", "v2", []byte("two"))
	eventually(t, "every view on v2", func() bool {
		for _, p := range paths {
			if got, err := os.ReadFile(filepath.Join(p, "current", "d", "file.bin")); err != nil || string(got) != "two" {
				return false
			}
		}
		return true
	})
	eventually(t, "the manager to see every pod on v2", func() bool {
		st, err := w.client.ChannelStatus(ctx, "flip")
		if err != nil || len(st.Pods) != 3 {
			return false
		}
		for _, p := range st.Pods {
			if p.Current != "v2" {
				return false
			}
		}
		return true
	})
}
