package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// t0 is the fixed "now" of the frames below.
var t0 = time.Date(2026, 2, 1, 9, 14, 5, 0, time.UTC)

// frameDetail is a channel mid-rollout: node-a downloading the head, node-b
// failing it, node-c done; one pod draining, one pinned.
func frameDetail() api.ChannelDetail {
	return api.ChannelDetail{
		Channel: release.Channel{Name: "web", Head: "v2"},
		Status: api.ChannelStatus{
			Nodes: []api.NodeProgress{
				{Node: "node-b", ReportedAt: t0.Add(-5 * time.Second), Releases: []release.Progress{
					{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: gib, BytesTotal: gib, UpdatedAt: t0.Add(-time.Hour)},
					{Channel: "web", Version: "v2", State: release.StateFailed, BytesTotal: 2469606195, UpdatedAt: t0.Add(-10 * time.Second),
						Error: "s3://data/web/v2/shard-0001.bin: object changed since publish (If-Match failed)"},
				}},
				{Node: "node-a", ReportedAt: t0.Add(-3 * time.Second), Releases: []release.Progress{
					{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: gib, BytesTotal: gib, UpdatedAt: t0.Add(-time.Hour)},
					{Channel: "web", Version: "v2", State: release.StateDownloading, BytesDone: 1288490189, BytesTotal: 2469606195, UpdatedAt: t0},
				}},
				{Node: "node-c", ReportedAt: t0.Add(-75 * time.Second), Releases: []release.Progress{
					{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: gib, BytesTotal: gib, UpdatedAt: t0.Add(-time.Hour)},
					{Channel: "web", Version: "v2", State: release.StateReady, BytesDone: 2469606195, BytesTotal: 2469606195, UpdatedAt: t0.Add(-time.Minute)},
				}},
			},
			Pods: []api.PodView{
				{Node: "node-c", View: release.View{PodNamespace: "shop", PodName: "pinned-0", Channel: "web", Current: "v1", Pinned: "v1"}},
				{Node: "node-a", View: release.View{PodNamespace: "shop", PodName: "web-0", Channel: "web", Current: "v1"}, Phase: release.PhaseDraining, To: "v2"},
				{Node: "node-b", View: release.View{PodNamespace: "shop", PodName: "web-1", Channel: "web", Current: "v1"}},
				{Node: "node-c", View: release.View{PodNamespace: "shop", PodName: "web-2", Channel: "web", Current: "v2"}},
			},
		},
	}
}

// TestWatchFrame pins the watch view of fixed inputs: on a terminal (in
// place, errors cut to fit) and elsewhere (whole errors, frames apart).
func TestWatchFrame(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame watchFrame
		want  string
	}{
		{"not a terminal", watchFrame{detail: frameDetail(), now: t0, every: 2 * time.Second}, `channel web: head v2
updated 2026-02-01 09:14:05Z

NODES
NODE    RELEASE  STATE        PROGRESS                                     REPORTED  ERROR
node-a  v2       downloading  [##########..........] 52% 1.2 GiB/2.3 GiB   3s ago    -
node-b  v2       failed       [....................] 0% 0 B/2.3 GiB        5s ago    s3://data/web/v2/shard-0001.bin: object changed since publish (If-Match failed)
node-c  v2       ready        [####################] 100% 2.3 GiB/2.3 GiB  1m ago    -

PODS (4: 3 on v1, 1 on v2; 1 moving)
NODE    POD            CURRENT      ROLLOUT   TARGET
node-c  shop/pinned-0  v1 (pinned)  -         -
node-a  shop/web-0     v1           draining  v2
node-b  shop/web-1     v1           -         -
node-c  shop/web-2     v2           -         -

`},
		{"terminal", watchFrame{detail: frameDetail(), now: t0, every: 2 * time.Second, tty: true}, `channel web: head v2
updated 2026-02-01 09:14:05Z, every 2s (Ctrl-C to stop)

NODES
NODE    RELEASE  STATE        PROGRESS                                     REPORTED  ERROR
node-a  v2       downloading  [##########..........] 52% 1.2 GiB/2.3 GiB   3s ago    -
node-b  v2       failed       [....................] 0% 0 B/2.3 GiB        5s ago    s3://data/web/v2/shard-0001.bin: object changed since publi…
node-c  v2       ready        [####################] 100% 2.3 GiB/2.3 GiB  1m ago    -

PODS (4: 3 on v1, 1 on v2; 1 moving)
NODE    POD            CURRENT      ROLLOUT   TARGET
node-c  shop/pinned-0  v1 (pinned)  -         -
node-a  shop/web-0     v1           draining  v2
node-b  shop/web-1     v1           -         -
node-c  shop/web-2     v2           -         -
`},
		{"nothing yet, update failed", watchFrame{detail: api.ChannelDetail{Channel: release.Channel{Name: "web", Paused: true, PauseReason: "by hand"}},
			now: t0, every: 2 * time.Second, fetchErr: errors.New("connection refused")}, `channel web: head -, rollout paused (by hand)
update failed at 2026-02-01 09:14:05Z: connection refused; showing the last state, retrying every 2s

NODES
(no node reports this channel)

PODS
(no pod serves this channel)

`},
		{"warm", watchFrame{detail: api.ChannelDetail{
			Channel: release.Channel{Name: "web", Head: "v2", Config: release.Config{Warm: &release.WarmConfig{NodeSelector: map[string]string{"pool": "search"}}}},
			Status:  api.ChannelStatus{Warm: []api.WarmNode{{Node: "node-a", Medium: "disk", HeadReady: true}, {Node: "node-bb", Medium: "disk", Stale: true}}},
		}, now: t0, every: 2 * time.Second}, `channel web: head v2
updated 2026-02-01 09:14:05Z

NODES
(no node reports this channel)

PODS
(no pod serves this channel)

WARM on pool=search (disk)
NODE     MEDIUM  HEAD v2
node-a   disk    ready
node-bb  disk    not yet (stale)

`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := tc.frame.write(&b); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("frame:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestInPlace(t *testing.T) {
	got := string(inPlace([]byte("a\nbb\n")))
	if want := "\033[Ha\033[K\nbb\033[K\n\033[J"; got != want {
		t.Errorf("inPlace = %q, want %q", got, want)
	}
}

// TestFocus: a node's row shows what it is busy with, else the head.
func TestFocus(t *testing.T) {
	p := func(v string, s release.State, updated int) release.Progress {
		return release.Progress{Version: v, State: s, UpdatedAt: t0.Add(time.Duration(updated) * time.Second)}
	}
	for _, tc := range []struct {
		name string
		rels []release.Progress
		want string
	}{
		{"downloading beats failed and ready", []release.Progress{p("v1", release.StateReady, 9), p("v3", release.StateFailed, 9), p("v2", release.StateDownloading, 1)}, "v2"},
		{"pending beats failed", []release.Progress{p("v3", release.StateFailed, 9), p("v2", release.StatePending, 1)}, "v2"},
		{"the latest of two failures", []release.Progress{p("v2", release.StateFailed, 1), p("v3", release.StateFailed, 2)}, "v3"},
		{"all ready: the head", []release.Progress{p("v2", release.StateReady, 1), p("v3", release.StateReady, 2)}, "v2"},
		{"all ready, no head: the latest", []release.Progress{p("v0", release.StateReady, 1), p("v1", release.StateReady, 2)}, "v1"},
	} {
		if got := focus(tc.rels, "v2").Version; got != tc.want {
			t.Errorf("%s: focus = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestAge(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s ago", 59 * time.Second: "59s ago", 61 * time.Minute: "1h ago", -time.Second: "0s ago", 150 * time.Second: "2m ago"} {
		if got := age(t0, t0.Add(-d)); got != want {
			t.Errorf("age(%s) = %q, want %q", d, got, want)
		}
	}
	if age(t0, time.Time{}) != "-" {
		t.Error("age of the zero time is not -")
	}
}

// watchRun is status --watch running in the background on a fake clock,
// its stdout writes delivered one by one.
type watchRun struct {
	clock  *clocktesting.FakeClock
	writes chan string
	cancel context.CancelFunc
	ended  chan struct{}
	result result
}

func (h *harness) startWatch(tty bool, args ...string) *watchRun {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.t.Context())
	w := &watchRun{clock: clocktesting.NewFakeClock(t0), writes: make(chan string, 64), cancel: cancel, ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		w.result = h.runWith(ctx, func(p []byte) { w.writes <- string(p) }, func(a *app) {
			a.clock = w.clock
			a.terminal = func(io.Writer) bool { return tty }
		}, args...)
	}()
	h.t.Cleanup(func() { cancel(); <-w.ended })
	return w
}

// next returns the watch's next write.
func (w *watchRun) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-w.writes:
		return s
	case <-w.ended:
		t.Fatalf("status --watch ended: exit %d, stderr %q", w.result.code, w.result.stderr)
	}
	return ""
}

// tick moves the fake clock on by the poll interval once the watch waits
// on it, which makes it draw the next frame.
func (w *watchRun) tick(t *testing.T) {
	t.Helper()
	// A guard against a hang, not a measure: the watch sleeps at once.
	guard := time.After(time.Minute)
	for !w.clock.HasWaiters() {
		select {
		case <-w.ended:
			t.Fatalf("status --watch ended: exit %d, stderr %q", w.result.code, w.result.stderr)
		case <-guard:
			t.Fatal("status --watch never waited on its clock")
		case <-time.After(time.Millisecond):
		}
	}
	w.clock.Step(defaultPollInterval)
}

// stop cancels the watch as Ctrl-C does and returns how it ended.
func (w *watchRun) stop() result {
	w.cancel()
	<-w.ended
	return w.result
}

// reportAt sends a node report that claims a fixed time. The manager
// dates it on receipt with its own (real) clock, later than t0, so the
// frames below show every report as "0s ago"; TestAge covers ages.
func (h *harness) reportAt(at time.Time, node string, progress []release.Progress, views ...release.View) {
	h.t.Helper()
	st := release.NodeStatus{Node: node, Releases: progress, Views: views, ReportedAt: at}
	if err := h.node.ReportStatus(h.t.Context(), st); err != nil {
		h.t.Fatalf("report status of %s: %v", node, err)
	}
}

// TestStatusWatchRedraws runs status --watch against a real manager on a
// fake clock: each tick of the clock draws a frame with what the node
// reported since, in place on a terminal, one after another elsewhere;
// Ctrl-C ends it with exit 0.
func TestStatusWatchRedraws(t *testing.T) {
	h := newHarness(t)
	h.createChannel("web")
	h.publishStub("web", "v1", false)
	frame1 := `channel web: head v1
updated 2026-02-01 09:14:05Z%s

NODES
NODE    RELEASE  STATE        PROGRESS                                      REPORTED  ERROR
node-a  v1       downloading  [##########..........] 50% 512.0 MiB/1.0 GiB  0s ago    -

PODS (1: 1 on -; 0 moving)
NODE    POD         CURRENT  ROLLOUT  TARGET
node-a  shop/web-0  -        -        -
`
	frame2 := `channel web: head v1
updated 2026-02-01 09:14:07Z%s

NODES
NODE    RELEASE  STATE  PROGRESS                                     REPORTED  ERROR
node-a  v1       ready  [####################] 100% 1.0 GiB/1.0 GiB  0s ago    -

PODS (1: 1 on v1; 0 moving)
NODE    POD         CURRENT  ROLLOUT  TARGET
node-a  shop/web-0  v1       -        -
`
	for _, tty := range []bool{false, true} {
		name := map[bool]string{false: "not a terminal", true: "terminal"}[tty]
		t.Run(name, func(t *testing.T) {
			h := h.sub(t)
			view := release.View{VolumeID: "vol-1", PodUID: "uid-1", PodName: "web-0", PodNamespace: "shop", Channel: "web", Medium: "disk"}
			h.reportAt(t0.Add(-time.Second), "node-a", []release.Progress{
				{Channel: "web", Version: "v1", State: release.StateDownloading, BytesDone: gib / 2, BytesTotal: gib, UpdatedAt: t0},
			}, view)
			w := h.startWatch(tty, "status", "web", "--watch")
			if tty {
				if got := w.next(t); got != hideCursor+clearScreen {
					t.Errorf("first write %q, want the cursor hidden and the screen cleared", got)
				}
			}
			checkFrame(t, w.next(t), frame1, tty)

			view.Current = "v1"
			h.reportAt(t0.Add(2*time.Second), "node-a", []release.Progress{
				{Channel: "web", Version: "v1", State: release.StateReady, BytesDone: gib, BytesTotal: gib, UpdatedAt: t0},
			}, view)
			w.tick(t)
			checkFrame(t, w.next(t), frame2, tty)

			r := w.stop()
			if r.code != 0 || r.stderr != "" {
				t.Errorf("status --watch ended with exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			if tty && !strings.HasSuffix(r.stdout, showCursor) {
				t.Errorf("status --watch on a terminal did not show the cursor again: %q", r.stdout[max(0, len(r.stdout)-20):])
			}
		})
	}
}

// checkFrame compares a drawn frame with want (a format taking the
// terminal's "every 2s" hint): on a terminal it must be drawn in place.
func checkFrame(t *testing.T, got, want string, tty bool) {
	t.Helper()
	if !tty {
		if want = strings.Replace(want, "%s", "", 1) + "\n"; got != want {
			t.Errorf("frame:\n%s\nwant:\n%s", got, want)
		}
		return
	}
	want = string(inPlace([]byte(strings.Replace(want, "%s", ", every 2s (Ctrl-C to stop)", 1))))
	if got != want {
		t.Errorf("frame:\n%q\nwant:\n%q", got, want)
	}
}

// TestStatusWatchKeepsGoing: a failed update after the first frame is
// shown with the last state, and the watch goes on; a failed first fetch
// ends the command.
func TestStatusWatchKeepsGoing(t *testing.T) {
	h := newHarness(t)
	h.createChannel("gone")
	w := h.startWatch(false, "status", "gone", "--watch")
	if first := w.next(t); !strings.HasPrefix(first, "channel gone: head -\n") {
		t.Fatalf("first frame:\n%s", first)
	}
	if err := h.admin.DeleteChannel(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	w.tick(t)
	if got := w.next(t); !strings.Contains(got, "update failed at 2026-02-01 09:14:07Z: ") || !strings.Contains(got, "not found") ||
		!strings.Contains(got, "showing the last state, retrying every 2s") {
		t.Errorf("frame after the channel was deleted:\n%s", got)
	}
	w.tick(t)
	w.next(t) // and another: still going
	if r := w.stop(); r.code != 0 {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
	h.fails([]string{"status", "nope", "--watch"}, "channel nope", "not found")
}
