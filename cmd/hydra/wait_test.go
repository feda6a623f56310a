package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

func TestPublishWait(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("wait")
	publish := func(version string, extra ...string) []string {
		return append([]string{"publish", "wait", "--dataset", "data=" + fd.dataURI, "--version", version, "--wait"}, extra...)
	}

	t.Run("no node reports the channel", func(t *testing.T) {
		out := h.sub(t).ok(publish("v1")...)
		wantText(t, out, "published wait/v1", "no node reports channel wait; nothing to wait for")
	})
	t.Run("not promoted", func(t *testing.T) {
		out := h.sub(t).ok(publish("v2", "--no-promote")...)
		wantText(t, out, "v2 is not the head of wait", "nothing to wait for")
	})

	// From here on node-a serves the channel.
	h.report("node-a", []release.Progress{{Channel: "wait", Version: "v1", State: release.StateReady}})

	t.Run("node downloads, then is ready", func(t *testing.T) {
		h := h.sub(t)
		// The node reports progress on v10 once the CLI has printed its
		// first progress line, as an agent would while the CLI polls.
		var once sync.Once
		onWrite := func(p []byte) {
			if strings.Contains(string(p), "0/1 nodes ready") {
				once.Do(func() {
					h.report("node-a", []release.Progress{{Channel: "wait", Version: "v10", State: release.StateReady, BytesDone: 11, BytesTotal: 11}})
				})
			}
		}
		r := h.runCtx(t.Context(), onWrite, publish("v10")...)
		if r.code != 0 {
			t.Fatalf("publish --wait: exit %d: %s", r.code, r.stderr)
		}
		wantText(t, r.stdout, "v10: 0/1 nodes ready, 1 pending", "v10: 1/1 nodes ready")
	})
	t.Run("json output stays parseable", func(t *testing.T) {
		h := h.sub(t)
		makeTree(t, fd.root, map[string]string{"data/v11/a.txt": "eleven"})
		h.report("node-a", []release.Progress{{Channel: "wait", Version: "v11", State: release.StateReady}})
		r := h.run(append([]string{"-o", "json"}, publish("v11")...)...)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var resp api.PublishResponse
		decodeJSON(t, r.stdout, &resp)
		if resp.Head != "v11" || !strings.Contains(r.stderr, "v11: 1/1 nodes ready") {
			t.Errorf("stdout %q, stderr %q: want the publish answer on stdout, progress on stderr", r.stdout, r.stderr)
		}
	})
	t.Run("node fails", func(t *testing.T) {
		h := h.sub(t)
		makeTree(t, fd.root, map[string]string{"data/v12/a.txt": "twelve"})
		h.report("node-a", []release.Progress{{Channel: "wait", Version: "v12", State: release.StateFailed, Error: "no space left on device"}})
		h.fails(publish("v12"), "release v12 failed on node node-a: no space left on device")
		if head := h.channel("wait").Head; head != "v12" {
			t.Errorf("head = %s: the release stays published when the wait fails", head)
		}
	})
}
