package main

import (
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestHeadCommands walks one channel through rollback, pin, unpin, pause
// and resume, checking the manager's state after each step through the Go
// client, and what the command printed.
func TestHeadCommands(t *testing.T) {
	h := newHarness(t)
	h.createChannel("heads")
	for _, v := range []string{"v1", "v2", "v3"} {
		h.publishStub("heads", v, false)
	}
	steps := []struct {
		name    string
		args    []string
		publish string // published through the client after the command
		want    release.Channel
		print   string
	}{
		{name: "rollback to previous", args: []string{"rollback", "heads"},
			want: release.Channel{Head: "v2"}, print: "channel heads: head v2\n"},
		{name: "rollback --to", args: []string{"rollback", "heads", "--to", "v1"},
			want: release.Channel{Head: "v1"}, print: "channel heads: head v1\n"},
		{name: "pin", args: []string{"pin", "heads", "v3"}, publish: "v4",
			want: release.Channel{Head: "v3", Pinned: "v3"}, print: "channel heads: head v3, pinned to v3\n"},
		{name: "unpin moves to the release promoted while pinned", args: []string{"unpin", "heads"},
			want: release.Channel{Head: "v4"}, print: "channel heads: head v4\n"},
		{name: "pause", args: []string{"pause", "heads", "--reason", "bad shard"},
			want:  release.Channel{Head: "v4", Paused: true, PauseReason: "bad shard"},
			print: "channel heads: head v4, rollout paused (bad shard)\n"},
		{name: "resume", args: []string{"resume", "heads"},
			want: release.Channel{Head: "v4"}, print: "channel heads: head v4\n"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			h := h.sub(t)
			if out := h.ok(s.args...); out != s.print {
				t.Errorf("printed %q, want %q", out, s.print)
			}
			if s.publish != "" {
				if resp := h.publishStub("heads", s.publish, false); resp.Promoted {
					t.Errorf("publish %s while pinned promoted it", s.publish)
				}
			}
			got := h.channel("heads")
			if got.Head != s.want.Head || got.Pinned != s.want.Pinned || got.Paused != s.want.Paused || got.PauseReason != s.want.PauseReason {
				t.Errorf("channel = head %q pinned %q paused %v (%q), want head %q pinned %q paused %v (%q)",
					got.Head, got.Pinned, got.Paused, got.PauseReason, s.want.Head, s.want.Pinned, s.want.Paused, s.want.PauseReason)
			}
		})
	}

	t.Run("json is the channel", func(t *testing.T) {
		var ch release.Channel
		decodeJSON(t, h.sub(t).ok("-o", "json", "pause", "heads"), &ch)
		if ch.Name != "heads" || !ch.Paused || ch.PauseReason == "" {
			t.Errorf("pause -o json = %+v", ch)
		}
	})
	errs := []struct {
		args []string
		want []string
	}{
		{[]string{"pin", "heads"}, []string{"pin: expected CHANNEL VERSION, got 1 argument"}},
		{[]string{"pin", "heads", "v9"}, []string{"v9", "not found"}},
		{[]string{"rollback", "nope"}, []string{"channel nope", "not found"}},
		{[]string{"rollback", "heads", "--to", "bad version"}, []string{`"bad version"`}},
		{[]string{"unpin"}, []string{"unpin: expected CHANNEL, got no arguments"}},
		{[]string{"resume", "a", "b"}, []string{"resume: expected CHANNEL, got 2 arguments"}},
	}
	for _, e := range errs {
		t.Run(strings.Join(e.args, " "), func(t *testing.T) { h.sub(t).fails(e.args, e.want...) })
	}
	t.Run("rollback after --to returns to the head before it", func(t *testing.T) {
		h := h.sub(t)
		h.ok("rollback", "heads", "--to", "v1")
		if out := h.ok("rollback", "heads"); !strings.HasPrefix(out, "channel heads: head v4") {
			t.Errorf("rollback after --to printed %q, want head v4 (the head before --to)", out)
		}
	})
}
