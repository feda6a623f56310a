package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Terminal control sequences (VT100/ECMA-48) that status --watch draws with.
const (
	clearScreen = "\033[H\033[2J"
	cursorHome  = "\033[H"
	eraseLine   = "\033[K"
	eraseDown   = "\033[J"
	hideCursor  = "\033[?25l"
	showCursor  = "\033[?25h"
)

// Widths of the watch view.
const (
	watchBarCells = 20
	// watchErrorWidth bounds an error cell on a terminal, where a wrapped
	// line would push the frame out of place; elsewhere errors are whole.
	watchErrorWidth = 60
)

// watchStatus follows a channel until ctx ends (Ctrl-C, the normal way
// out, not an error): per node, the release it is busy with as a progress
// bar; per pod, its release and rollout phase. A terminal gets each frame
// drawn over the last; other output gets the frames one after another (or
// a stream of JSON or YAML documents with -o). The first fetch's failure
// ends the command; later ones are shown and retried, so a manager
// restart does not end the watch.
func (a *app) watchStatus(ctx context.Context, cl *client.Client, channel string) error {
	tty := a.output == outputTable && a.terminal(a.stdout)
	if tty {
		fmt.Fprint(a.stdout, hideCursor+clearScreen)
		defer fmt.Fprint(a.stdout, showCursor)
	}
	var last api.ChannelDetail
	for frame := 0; ; frame++ {
		d, err := a.channelDetail(ctx, cl, channel)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && frame == 0:
			return err
		case err == nil:
			last = d
		}
		if err := a.drawFrame(last, err, tty); err != nil {
			return err
		}
		if !a.sleep(ctx, a.pollInterval) {
			return nil
		}
	}
}

// drawFrame writes one frame in a single Write, so a terminal never shows
// half of one.
func (a *app) drawFrame(d api.ChannelDetail, fetchErr error, tty bool) error {
	switch a.output {
	case outputJSON, outputYAML:
		if fetchErr != nil {
			fmt.Fprintf(a.stderr, "hydra: status: %s; retrying\n", describe(fetchErr))
			return nil
		}
		if a.output == outputYAML {
			fmt.Fprintln(a.stdout, "---")
		}
		return a.render(d.Status, nil)
	}
	var buf bytes.Buffer
	f := watchFrame{detail: d, now: a.clock.Now(), every: a.pollInterval, fetchErr: fetchErr, tty: tty}
	if err := f.write(&buf); err != nil {
		return err
	}
	out := buf.Bytes()
	if tty {
		out = inPlace(out)
	}
	_, err := a.stdout.Write(out)
	return err
}

// inPlace turns a frame into one drawn over the previous: from the top
// left corner, each line erased to its end, and what is below it erased
// (the last frame may have been longer).
func inPlace(frame []byte) []byte {
	lines := strings.Split(strings.TrimSuffix(string(frame), "\n"), "\n")
	return []byte(cursorHome + strings.Join(lines, eraseLine+"\n") + eraseLine + "\n" + eraseDown)
}

// watchFrame is one frame of status --watch, from fixed inputs.
type watchFrame struct {
	detail   api.ChannelDetail
	now      time.Time
	every    time.Duration
	fetchErr error
	tty      bool
}

func (f watchFrame) write(w io.Writer) error {
	headLine(w, f.detail.Channel)
	switch {
	case f.fetchErr != nil:
		fmt.Fprintf(w, "update failed at %s: %s; showing the last state, retrying every %s\n",
			formatTime(f.now), describe(f.fetchErr), f.every)
	case f.tty:
		fmt.Fprintf(w, "updated %s, every %s (Ctrl-C to stop)\n", formatTime(f.now), f.every)
	default:
		fmt.Fprintf(w, "updated %s\n", formatTime(f.now))
	}
	st := f.detail.Status
	fmt.Fprintln(w)
	fmt.Fprintln(w, "NODES")
	tw := newTable(w)
	if len(st.Nodes) == 0 {
		fmt.Fprintln(tw, "(no node reports this channel)")
	} else {
		f.nodeRows(tw, st.Nodes)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "PODS%s\n", safe(podSummary(st.Pods)))
	if len(st.Pods) == 0 {
		fmt.Fprintln(tw, "(no pod serves this channel)")
	} else {
		row(tw, "NODE", "POD", "CURRENT", "ROLLOUT", "TARGET")
		for _, p := range st.Pods {
			current := orDash(p.Current)
			if p.Pinned != "" {
				current += " (pinned)"
			}
			row(tw, p.Node, podName(p), current, orDash(string(p.Phase)), orDash(p.To))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	warmSection(w, f.detail)
	if !f.tty {
		fmt.Fprintln(w) // a blank line between frames
	}
	return nil
}

// nodeRows has one row per node: the release it is busy with (see focus).
func (f watchFrame) nodeRows(w io.Writer, nodes []api.NodeProgress) {
	row(w, "NODE", "RELEASE", "STATE", "PROGRESS", "REPORTED", "ERROR")
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b api.NodeProgress) int { return strings.Compare(a.Node, b.Node) })
	for _, n := range nodes {
		if len(n.Releases) == 0 {
			continue
		}
		p := focus(n.Releases, f.detail.Channel.Head)
		errText := orDash(p.Error)
		if f.tty {
			errText = truncate(errText, watchErrorWidth)
		}
		reported := age(f.now, n.ReportedAt)
		if n.Stale {
			reported += " (stale)" // as in hydra status: it protects nothing
		}
		row(w, n.Node, p.Version, p.State, bar(p.BytesDone, p.BytesTotal, watchBarCells), reported, errText)
	}
}

// focus is the release a node's row shows: the one it is busy with
// (downloading, else pending, else failed; the latest updated first),
// else the head, else the latest updated.
func focus(rels []release.Progress, head string) release.Progress {
	rank := func(p release.Progress) int {
		switch {
		case p.State == release.StateDownloading:
			return 0
		case p.State == release.StatePending:
			return 1
		case p.State == release.StateFailed:
			return 2
		case p.Version == head:
			return 3
		}
		return 4
	}
	return slices.MinFunc(rels, func(a, b release.Progress) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), b.UpdatedAt.Compare(a.UpdatedAt), strings.Compare(a.Version, b.Version))
	})
}

// podSummary is " (3: 2 on v1, 1 on v2; 1 moving)", "" without pods.
func podSummary(pods []api.PodView) string {
	if len(pods) == 0 {
		return ""
	}
	on := map[string]int{}
	moving := 0
	for _, p := range pods {
		on[orDash(p.Current)]++
		if p.Phase != "" {
			moving++
		}
	}
	versions := make([]string, 0, len(on))
	for v := range on {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b string) int { return cmp.Or(cmp.Compare(on[b], on[a]), strings.Compare(a, b)) })
	parts := make([]string, len(versions))
	for i, v := range versions {
		parts[i] = fmt.Sprintf("%d on %s", on[v], v)
	}
	return fmt.Sprintf(" (%d: %s; %d moving)", len(pods), strings.Join(parts, ", "), moving)
}

// age renders how long ago t was: "5s ago", "3m ago", "2h ago"; "-" for zero.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0) // a node's clock may run ahead
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	}
	return fmt.Sprintf("%dh ago", int(d/time.Hour))
}

// truncate cuts s to n runes, ending in "…" when cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
