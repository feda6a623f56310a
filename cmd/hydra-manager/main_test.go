package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

func TestFlagValidation(t *testing.T) {
	dir := t.TempDir()
	store := "bolt://" + filepath.Join(dir, "state.db")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no auth", []string{"--store", store}, "refusing to start without authentication"},
		{"both auth modes", []string{"--store", store, "--insecure-no-auth", "--token-file", "x"}, "contradict"},
		{"bad listen", []string{"--store", store, "--insecure-no-auth", "--listen", "nonsense"}, "--listen"},
		{"missing token file", []string{"--store", store, "--token-file", filepath.Join(dir, "none.csv")}, "no such file"},
		{"bad store URL", []string{"--store", "postgres://x", "--insecure-no-auth", "--listen", "127.0.0.1:0"}, "scheme must be bolt or consul"},
		{"unknown flag", []string{"--colour"}, "unknown flag"},
		{"missing kubeconfig", []string{"--insecure-no-auth", "--kubeconfig", filepath.Join(dir, "kc")}, "--kubeconfig"},
		{"node report TTL below two idle reports", []string{"--store", store, "--insecure-no-auth", "--node-report-ttl", "90s"}, "--node-report-ttl 1m30s"},
		{"no publish at a time", []string{"--store", store, "--insecure-no-auth", "--max-concurrent-publishes", "0"}, "--max-concurrent-publishes 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%v) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// replica is one hydra-manager started through run(), as the binary would be.
type replica struct {
	t      *testing.T
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, args ...string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	r := &replica{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), io.Discard, listening)
	}()
	select {
	case r.addr = <-listening:
	case err := <-r.done:
		t.Fatalf("manager exited at start: %v", err)
	}
	t.Cleanup(r.stop)
	if slices.Contains(args, "--tls-cert") {
		// Only readiness is awaited here; the tests check the certificate.
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		waitHTTP(t, insecure, "https://"+r.addr+"/readyz")
	} else {
		waitHTTP(t, http.DefaultClient, "http://"+r.addr+"/readyz")
	}
	return r
}

// stop shuts the replica down gracefully, as SIGTERM would; a graceful
// shutdown (store closed, leadership resigned) returns no error.
func (r *replica) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		r.t.Errorf("replica %s: shutdown: %v", r.addr, err)
	}
	r.cancel = nil
}

func (r *replica) client(t *testing.T) *client.Client {
	c, err := client.New("http://" + r.addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitHTTP(t *testing.T, hc *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// populate creates a channel with two releases and moves the head back.
func populate(t *testing.T, c *client.Client) api.ChannelDetail {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateChannel(ctx, "durable", release.Config{Keep: 4}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"v1", "v2"} {
		ds := []release.Dataset{{Name: "index", Source: "s3://bucket/index/" + v + "/",
			Manifest: release.Manifest{Files: []release.File{{Path: "part-0", Size: 3, ETag: `"abc"`}}}}}
		if _, err := c.Publish(ctx, "durable", api.PublishRequest{Version: v, Datasets: ds}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Rollback(ctx, "durable", ""); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetChannel(ctx, "durable")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkSurvived compares what a restarted manager serves with before.
func checkSurvived(t *testing.T, c *client.Client, before api.ChannelDetail) {
	t.Helper()
	after, err := c.GetChannel(context.Background(), "durable")
	if err != nil {
		t.Fatal(err)
	}
	if after.Channel.Head != "v1" || len(after.Releases) != 2 || after.Channel.Config.Keep != 4 {
		t.Fatalf("after restart: head %s, %d releases, keep %d; want v1, 2, 4",
			after.Channel.Head, len(after.Releases), after.Channel.Config.Keep)
	}
	if fmt.Sprint(after.Releases) != fmt.Sprint(before.Releases) {
		t.Fatalf("releases changed across restart:\n%v\n%v", before.Releases, after.Releases)
	}
	m, err := c.GetManifest(context.Background(), "durable", "v2")
	if err != nil || len(m.Datasets) != 1 || m.Datasets[0].Manifest.Files[0].ETag != `"abc"` {
		t.Fatalf("manifest after restart: %+v, %v", m, err)
	}
}

func TestRestartKeepsStateBolt(t *testing.T) {
	store := "bolt://" + filepath.Join(t.TempDir(), "state.db")
	r := startReplica(t, "--store", store, "--insecure-no-auth")
	before := populate(t, r.client(t))
	r.stop()
	r = startReplica(t, "--store", store, "--insecure-no-auth")
	checkSurvived(t, r.client(t), before)
}

func TestRestartKeepsStateConsul(t *testing.T) {
	consul := testenv.StartConsul(t)
	store := "consul://" + consul.Addr + "/restart"
	r := startReplica(t, "--store", store, "--insecure-no-auth")
	before := populate(t, r.client(t))
	r.stop()
	r = startReplica(t, "--store", store, "--insecure-no-auth")
	checkSurvived(t, r.client(t), before)
}

// TestHAConsul runs three replicas on one Consul: all serve the API, exactly
// one leads, and when the leader stops another takes over.
func TestHAConsul(t *testing.T) {
	consul := testenv.StartConsul(t)
	store := "consul://" + consul.Addr + "/ha"
	var replicas []*replica
	for range 3 {
		replicas = append(replicas, startReplica(t, "--store", store, "--insecure-no-auth", "--retention-interval", "1s"))
	}
	// A write through one replica is visible through the others.
	before := populate(t, replicas[0].client(t))
	for _, r := range replicas[1:] {
		d, err := r.client(t).GetChannel(context.Background(), "durable")
		if err != nil || d.Channel.Head != before.Channel.Head {
			t.Fatalf("replica %s: %+v, %v", r.addr, d.Channel, err)
		}
	}
	leader := waitOneLeader(t, replicas)
	leader.stop()
	var rest []*replica
	for _, r := range replicas {
		if r != leader {
			rest = append(rest, r)
		}
	}
	next := waitOneLeader(t, rest)
	if next == leader {
		t.Fatal("stopped replica still leads")
	}
}

// waitOneLeader waits until exactly one replica reports leadership on
// /metrics, and returns it.
func waitOneLeader(t *testing.T, replicas []*replica) *replica {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var leaders []*replica
		for _, r := range replicas {
			if leads(r) {
				leaders = append(leaders, r)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%d replicas lead at once", len(leaders))
		}
		if len(leaders) == 1 {
			return leaders[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no replica became leader")
	return nil
}

func leads(r *replica) bool {
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "hydra_manager_leader 1" {
			return true
		}
	}
	return false
}
