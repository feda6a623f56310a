package manager_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// newManager runs a manager on a fresh bbolt store with a fake clock. The
// retention loop's interval is far beyond any clock step the tests make, so
// retention runs only when a test calls ApplyRetention.
func newManager(t *testing.T) (*manager.Manager, *store.Store, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tm := managertest.Start(t, managertest.Options{Clock: clk, RetentionInterval: 1000 * time.Hour})
	return tm.Manager, tm.Store, clk
}

func dataset(name string, files ...string) release.Dataset {
	d := release.Dataset{Name: name, Source: "s3://bucket/" + name + "/"}
	for _, f := range files {
		d.Manifest.Files = append(d.Manifest.Files, release.File{Path: f, Size: 1, ETag: `"e"`})
	}
	return d
}

func mustPublish(t *testing.T, m *manager.Manager, channel, version string, promote bool) api.PublishResponse {
	t.Helper()
	resp, err := m.Publish(context.Background(), channel, "test", api.PublishRequest{
		Version: version, NoPromote: !promote, Datasets: []release.Dataset{dataset("index", "a.bin")},
	})
	if err != nil {
		t.Fatalf("Publish(%s): %v", version, err)
	}
	return resp
}

func mustCreate(t *testing.T, m *manager.Manager, name string, cfg release.Config) {
	t.Helper()
	if _, err := m.CreateChannel(context.Background(), api.CreateChannelRequest{Name: name, Config: cfg}); err != nil {
		t.Fatalf("CreateChannel(%s): %v", name, err)
	}
}

func TestCreateChannelDefaults(t *testing.T) {
	m, _, _ := newManager(t)
	ch, err := m.CreateChannel(context.Background(), api.CreateChannelRequest{Name: "search-index"})
	if err != nil {
		t.Fatal(err)
	}
	c := ch.Config
	if c.Keep != 10 || c.NodeKeep != 2 || c.Rollout.MaxUnavailable != 1 || c.Rollout.Drain.Duration == 0 || c.Rollout.ReloadTimeout.Duration == 0 {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestHeadMoves(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "c", release.Config{})
	for _, v := range []string{"v1", "v2", "v3"} {
		mustPublish(t, m, "c", v, true)
	}
	steps := []struct {
		name     string
		do       func() (release.Channel, error)
		wantHead string
		wantErr  error
	}{
		{"rollback to previous", func() (release.Channel, error) { return m.Rollback(ctx, "c", "") }, "v2", nil},
		{"rollback again", func() (release.Channel, error) { return m.Rollback(ctx, "c", "") }, "v1", nil},
		{"rollback past the oldest", func() (release.Channel, error) { return m.Rollback(ctx, "c", "") }, "v1", manager.ErrNoRelease},
		{"set head", func() (release.Channel, error) { return m.SetHead(ctx, "c", "v3") }, "v3", nil},
		{"set head to unknown", func() (release.Channel, error) { return m.SetHead(ctx, "c", "v9") }, "v3", store.ErrNotFound},
		{"rollback to a version", func() (release.Channel, error) { return m.Rollback(ctx, "c", "v1") }, "v1", nil},
		{"pin", func() (release.Channel, error) { return m.Pin(ctx, "c", "v2") }, "v2", nil},
		{"set head while pinned", func() (release.Channel, error) { return m.SetHead(ctx, "c", "v3") }, "v2", manager.ErrPinned},
		{"rollback while pinned", func() (release.Channel, error) { return m.Rollback(ctx, "c", "") }, "v2", manager.ErrPinned},
		{"unpin returns to the head before the pin", func() (release.Channel, error) { return m.Unpin(ctx, "c") }, "v1", nil},
	}
	for _, st := range steps {
		_, err := st.do()
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
		}
		d, _ := m.GetChannel(ctx, "c")
		if d.Channel.Head != st.wantHead {
			t.Fatalf("%s: head %s, want %s", st.name, d.Channel.Head, st.wantHead)
		}
	}
	// A publish while pinned is stored but does not move the head.
	if _, err := m.Pin(ctx, "c", "v1"); err != nil {
		t.Fatal(err)
	}
	if resp := mustPublish(t, m, "c", "v4", true); resp.Promoted || resp.Head != "v1" {
		t.Fatalf("publish while pinned: %+v", resp)
	}
	ch, _ := m.Pause(ctx, "c", "")
	if !ch.Paused || ch.PauseReason == "" {
		t.Fatalf("pause: %+v", ch)
	}
	if ch, _ = m.Resume(ctx, "c"); ch.Paused || ch.PauseReason != "" {
		t.Fatalf("resume: %+v", ch)
	}
}

func TestDeleteChannelRefusedWhileInUse(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "used", release.Config{})
	mustPublish(t, m, "used", "v1", true)
	report := release.NodeStatus{Node: "node-a", Views: []release.View{{VolumeID: "pvc-1", PodName: "web-0", PodNamespace: "prod", Channel: "used", Current: "v1"}}}
	if err := m.ReportStatus(ctx, "node-a", report); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteChannel(ctx, "used"); !errors.Is(err, manager.ErrInUse) {
		t.Fatalf("DeleteChannel while in use: %v, want ErrInUse", err)
	}
	report.Views = nil
	if err := m.ReportStatus(ctx, "node-a", report); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteChannel(ctx, "used"); err != nil {
		t.Fatalf("DeleteChannel after the views went: %v", err)
	}
}

func TestReportStatusNodeMismatch(t *testing.T) {
	m, _, _ := newManager(t)
	err := m.ReportStatus(context.Background(), "node-a", release.NodeStatus{Node: "node-b"})
	if !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("mismatched node: %v, want ErrInvalid", err)
	}
}

// TestRetention keeps the newest Keep releases, drops those past MaxAge, and
// never drops the head, the pinned release or one a node serves.
func TestRetention(t *testing.T) {
	m, _, clk := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "r", release.Config{Keep: 3, MaxAge: release.Duration{Duration: 48 * time.Hour}})
	for i := 1; i <= 8; i++ {
		mustPublish(t, m, "r", fmt.Sprintf("v%d", i), true)
		clk.Step(time.Hour)
	}
	// Head on v2 (rolled back), v1 served by a pod: both survive.
	if _, err := m.SetHead(ctx, "r", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := m.ReportStatus(ctx, "node-a", release.NodeStatus{Node: "node-a",
		Views: []release.View{{VolumeID: "pvc-1", Channel: "r", Current: "v1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, m, "r", "v1", "v2", "v6", "v7", "v8")

	// Three days later everything is past MaxAge but the head and v1 stay,
	// and the newest releases are still removed only by age. node-a,
	// alive, has reported since.
	clk.Step(72 * time.Hour)
	if err := m.ReportStatus(ctx, "node-a", release.NodeStatus{Node: "node-a",
		Views: []release.View{{VolumeID: "pvc-1", Channel: "r", Current: "v1"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ApplyRetention(ctx); err != nil {
		t.Fatal(err)
	}
	wantVersions(t, m, "r", "v1", "v2")
}

func wantVersions(t *testing.T, m *manager.Manager, channel string, want ...string) {
	t.Helper()
	rels, err := m.ListReleases(context.Background(), channel)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rels {
		got = append(got, r.Version)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("releases %v, want %v", got, want)
	}
}

// TestDesiredLongPoll: a poll with the current index waits and is woken by
// a publish; a poll with index 0 answers at once.
func TestDesiredLongPoll(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "lp", release.Config{NodeKeep: 3})
	// The snapshot follows the store asynchronously: poll until it shows
	// the channel, as a node would.
	first := pollUntil(t, m, "node-a", func(d release.Desired) bool { return len(d.Channels) > 0 })
	if len(first.Channels) != 1 || first.Channels[0].Name != "lp" || first.Channels[0].NodeKeep != 3 || first.Index == 0 {
		t.Fatalf("first desired: %+v", first)
	}
	got := pollAsync(t, m, "node-a", first.Index)
	mustPublish(t, m, "lp", "v1", true)
	select {
	case d := <-got:
		if d.Index == first.Index || d.Channels[0].Head != "v1" {
			t.Fatalf("woken desired: %+v", d)
		}
	case <-time.After(time.Minute):
		t.Fatal("long-poll not woken by the publish")
	}
	_, err := m.Desired(ctx, "Bad Node", 0, time.Second)
	if !errors.Is(err, release.ErrInvalid) {
		t.Fatalf("bad node name: %v", err)
	}
}

// TestDesiredPerNode: a node that has reported is told only of the
// channels its report names, and a publish to another channel leaves its
// poll waiting; a node that has not reported hears of every channel.
func TestDesiredPerNode(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "a", release.Config{})
	mustCreate(t, m, "b", release.Config{})
	mustPublish(t, m, "a", "v1", true)
	if err := m.ReportStatus(ctx, "node-a", release.NodeStatus{Releases: []release.Progress{
		{Channel: "a", Version: "v1", State: release.StateReady, BytesDone: 1, BytesTotal: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	heads := func(d release.Desired) string {
		s := ""
		for _, ch := range d.Channels {
			s += ch.Name + "@" + ch.Head + " "
		}
		return s
	}
	first := pollUntil(t, m, "node-a", func(d release.Desired) bool { return heads(d) == "a@v1 " })
	got := pollAsync(t, m, "node-a", first.Index)
	// b's publish reaches the snapshot (a node that has not reported
	// sees it) without answering node-a's poll ...
	mustPublish(t, m, "b", "v1", true)
	pollUntil(t, m, "node-new", func(d release.Desired) bool { return heads(d) == "a@v1 b@v1 " })
	select {
	case d := <-got:
		t.Fatalf("node-a's poll was answered by a publish to b: %+v", d)
	default:
	}
	// ... and a's publish answers it.
	mustPublish(t, m, "a", "v2", true)
	select {
	case d := <-got:
		if heads(d) != "a@v2 " || d.Index == first.Index {
			t.Fatalf("node-a woken with %q at index %d (was %d), want a@v2 at a new index", heads(d), d.Index, first.Index)
		}
	case <-time.After(time.Minute):
		t.Fatal("node-a's poll not woken by a publish to a")
	}
}

// pollUntil long-polls as node would until the answer satisfies ok, for
// at most 30 s.
func pollUntil(t *testing.T, m *manager.Manager, node string, ok func(release.Desired) bool) release.Desired {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var d release.Desired
	for !ok(d) {
		next, err := m.Desired(ctx, node, d.Index, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v; last answer %+v", node, err, d)
		}
		d = next
	}
	return d
}

// pollAsync starts one long-poll of node at index; its answer arrives on
// the channel.
func pollAsync(t *testing.T, m *manager.Manager, node string, index uint64) <-chan release.Desired {
	got := make(chan release.Desired, 1)
	go func() {
		d, err := m.Desired(context.Background(), node, index, time.Hour)
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	return got
}

// TestShutdownWakesLongPolls: Shutdown ends waiting polls at once.
func TestShutdownWakesLongPolls(t *testing.T) {
	m, _, _ := newManager(t)
	d, err := m.Desired(context.Background(), "node-a", 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := m.Desired(context.Background(), "node-a", d.Index, time.Hour)
		errc <- err
	}()
	m.Shutdown()
	if err := <-errc; !errors.Is(err, manager.ErrShuttingDown) {
		t.Fatalf("long-poll after Shutdown: %v", err)
	}
}
