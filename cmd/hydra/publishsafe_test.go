package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// TestPublishMarkers publishes from real MinIO while one dataset of the
// newest version is still half uploaded.
func TestPublishMarkers(t *testing.T) {
	m := startS3(t)
	put := func(key string) { m.Put(t, "datasets", key, randomBytes(100)) }
	for _, k := range []string{"ann/v1/a.bin", "ann/v1/b.bin", "ann/v1/_SUCCESS", "docs/v1/d.txt", "docs/v1/_SUCCESS",
		"ann/v2/a.bin", "docs/v2/d.txt", "docs/v2/_SUCCESS"} { // ann/v2: 1 of 2 files, no marker yet
		put(k)
	}
	h := newHarness(t)
	h.createChannel("mk")
	args := func(extra ...string) []string {
		return append([]string{"publish", "mk", "--require-marker", "_SUCCESS",
			"--dataset", "ann=s3://datasets/ann/{VERSION}/", "--dataset", "docs=s3://datasets/docs/{VERSION}/"}, extra...)
	}

	var resp api.PublishResponse
	decodeJSON(t, h.ok(append([]string{"-o", "json"}, args("--version", "auto")...)...), &resp)
	if resp.Release.Version != "v1" || resp.Release.Files != 3 {
		t.Fatalf("auto published %s with %d files, want v1 with 3 (v2's ann has no marker; markers not in the manifest)",
			resp.Release.Version, resp.Release.Files)
	}
	r := h.run(args("--version", "auto")...)
	checkFailure(t, args(), r, "nothing new", "v1", "v2", "dataset ann", "marker _SUCCESS missing")
	if r.code != exitNothingNew {
		t.Errorf("auto with nothing new: exit %d, want %d", r.code, exitNothingNew)
	}
	r = h.run(args("--version", "v2")...)
	checkFailure(t, args(), r, "dataset ann", "_SUCCESS", "s3://datasets/ann/v2/")
	if r.code != exitInvalid {
		t.Errorf("explicit version without its marker: exit %d, want %d", r.code, exitInvalid)
	}

	put("ann/v2/b.bin")
	put("ann/v2/_SUCCESS")
	decodeJSON(t, h.ok(append([]string{"-o", "json"}, args()...)...), &resp)
	if resp.Release.Version != "v2" || resp.Head != "v2" {
		t.Fatalf("auto after the marker appeared = %+v, want v2 promoted", resp)
	}
}

// TestPublishChannelCompleteness uses the channel's own requireMarker and
// minObjects, and refuses an empty dataset, without any flag.
func TestPublishChannelCompleteness(t *testing.T) {
	h := newHarness(t)
	root := t.TempDir()
	makeTree(t, root, map[string]string{
		"one/v1/a": "a", "one/v1/_DONE": "",
		"two/v1/a": "a", "two/v1/b": "b",
		"two/v2/a": "a", "two/v2/b": "b", "two/v2/_DONE": "",
	})
	if _, err := h.admin.CreateChannel(t.Context(), "cc", release.Config{RequireMarker: "_DONE", MinObjects: 2}); err != nil {
		t.Fatal(err)
	}
	uri := func(p string) string { return "ds=file://" + root + "/" + p }
	h.fails([]string{"publish", "cc", "--dataset", uri("one/v1/"), "--version", "a1"}, "dataset ds", "holds 1 files", "minObjects is 2")
	h.fails([]string{"publish", "cc", "--dataset", uri("two/v1/"), "--version", "a2"}, "dataset ds", "marker _DONE missing")
	out := h.ok("publish", "cc", "--dataset", uri("two/{VERSION}/"))
	wantText(t, out, "published cc/v2", "2 files")
}

func TestPublishDatasetSetChange(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("set")
	h.ok("publish", "set", "--dataset", "data="+fd.dataURI, "--dataset", "static="+fd.staticURI, "--version", "v1")
	r := h.run("publish", "set", "--dataset", "data="+fd.dataURI, "--dataset", "extra="+fd.staticURI, "--version", "v2")
	checkFailure(t, nil, r, "datasets", "added: extra", "removed: static", "--allow-dataset-change")
	if r.code != exitInvalid {
		t.Errorf("changed dataset set: exit %d, want %d", r.code, exitInvalid)
	}
	h.ok("publish", "set", "--dataset", "data="+fd.dataURI, "--dataset", "extra="+fd.staticURI, "--version", "v2", "--allow-dataset-change")
	if head := h.channel("set").Head; head != "v2" {
		t.Errorf("head after an allowed change = %s, want v2", head)
	}
}

func TestPublishDryRunAndDiff(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("dry")
	h.ok("publish", "dry", "--dataset", "data="+fd.dataURI, "--version", "v1")
	out := h.ok("publish", "dry", "--dataset", "data="+fd.dataURI, "--version", "v2", "--dry-run")
	wantText(t, out, "dry run: would publish dry/v2", "compared with the head v1", "- data/sub/b.bin", "~ data/a.txt")
	if rels, err := h.admin.ListReleases(t.Context(), "dry"); err != nil || len(rels) != 1 {
		t.Fatalf("after --dry-run the channel has %d releases (%v), want 1", len(rels), err)
	}
	var res dryRunResult
	decodeJSON(t, h.ok("-o", "json", "publish", "dry", "--dataset", "data="+fd.dataURI, "--dataset", "static="+fd.staticURI,
		"--version", "v2", "--dry-run", "--allow-dataset-change"), &res)
	if !slices.Equal(res.Diff.DatasetsAdded, []string{"static"}) || res.Diff.BytesFrom != 11+4096 {
		t.Errorf("dry run diff = %+v, want static added and the head's bytes", res.Diff)
	}

	h.ok("publish", "dry", "--dataset", "data="+fd.dataURI, "--version", "v10")
	out = h.ok("release", "diff", "dry", "v1", "v10")
	wantText(t, out, "dry/v1 -> v10", "- data/sub/b.bin", "~ data/a.txt")
	var d release.Diff
	decodeJSON(t, h.ok("-o", "json", "release", "diff", "dry", "v10", "v10"), &d)
	if !d.Empty() {
		t.Errorf("a release against itself: %+v, want no difference", d)
	}
}

func TestHistoryCommands(t *testing.T) {
	h := newHarness(t)
	h.createChannel("hist")
	for _, v := range []string{"A", "B", "C"} {
		h.publishStub("hist", v, false)
	}
	h.publishStub("hist", "scratch", true)
	steps := []struct {
		args []string
		head string
	}{
		{[]string{"promote", "hist", "A"}, "A"},
		{[]string{"rollback", "hist"}, "C"},
		{[]string{"pin", "hist", "B"}, "B"},
		{[]string{"unpin", "hist"}, "C"},
	}
	for _, s := range steps {
		h.ok(s.args...)
		if got := h.channel("hist").Head; got != s.head {
			t.Fatalf("hydra %s: head %s, want %s", strings.Join(s.args, " "), got, s.head)
		}
	}
	var hist api.History
	decodeJSON(t, h.ok("-o", "json", "history", "hist"), &hist)
	var got []string
	for _, mv := range hist.Moves {
		got = append(got, mv.Cause+":"+mv.From+">"+mv.To)
	}
	want := []string{"publish:>A", "publish:A>B", "publish:B>C", "promote:C>A", "rollback:A>C", "pin:C>B", "unpin:B>C"}
	if !slices.Equal(got, want) {
		t.Errorf("history = %v, want %v", got, want)
	}
	wantText(t, h.ok("history", "hist"), "CAUSE", "promote", "rollback", "unpin", "admin")
}

func TestReleaseRm(t *testing.T) {
	h := newHarness(t)
	h.createChannel("rm")
	for _, v := range []string{"used", "pinned", "scratch", "head"} {
		h.publishStub("rm", v, v != "head" && v != "pinned")
	}
	// "pinned" is the head until pinned; then "head" becomes the head.
	if err := h.node.ReportStatus(t.Context(), release.NodeStatus{Node: "node-1",
		Views: []release.View{{VolumeID: "vol-1", Channel: "rm", Current: "used"}}}); err != nil {
		t.Fatal(err)
	}
	h.publishStub("rm", "head2", false)
	h.ok("pin", "rm", "pinned")
	rows := []struct {
		version string
		want    []string
	}{
		{"pinned", []string{"rm/pinned", "head or pinned"}},
		{"used", []string{"rm/used", "in use", "vol-1", "node-1"}},
	}
	for _, r := range rows {
		res := h.run("release", "rm", "rm", r.version)
		checkFailure(t, nil, res, r.want...)
		if res.code != exitConflict {
			t.Errorf("release rm %s: exit %d, want %d", r.version, res.code, exitConflict)
		}
	}
	h.ok("unpin", "rm")
	checkFailure(t, nil, h.run("release", "rm", "rm", h.channel("rm").Head), "head or pinned")
	wantText(t, h.ok("release", "rm", "rm", "scratch"), "removed release rm/scratch")
	// The version name may be used again.
	h.publishStub("rm", "scratch", true)
}

func TestChannelSet(t *testing.T) {
	h := newHarness(t)
	h.createChannel("cs")
	out := h.ok("channel", "set", "cs", "--keep", "4", "--drain", "1m", "--require-marker", "_SUCCESS", "--min-objects", "2")
	wantText(t, out, "keep 10 -> 4", `rollout.drain "30s" -> "1m0s"`, `requireMarker unset -> "_SUCCESS"`, "minObjects unset -> 2")
	c := h.channel("cs").Config
	if c.Keep != 4 || c.Rollout.Drain.Minutes() != 1 || c.RequireMarker != "_SUCCESS" || c.MinObjects != 2 || c.NodeKeep != release.DefaultNodeKeep {
		t.Errorf("config after channel set = %+v", c)
	}
	wantText(t, h.ok("channel", "show", "cs"), "keep 4", "drain 1m0s", "require-marker _SUCCESS, min-objects 2")
	r := h.run("channel", "set", "cs", "--keep", "-3")
	checkFailure(t, nil, r, "keep", "-3")
	if r.code != exitInvalid {
		t.Errorf("channel set --keep -3: exit %d, want %d", r.code, exitInvalid)
	}
	if r := h.run("channel", "set", "cs"); r.code != exitUsage {
		t.Errorf("channel set without a setting: exit %d, want %d", r.code, exitUsage)
	}
}

// TestClockVersionCollision runs publishes within one second: each takes
// the next free second, and a failing one shows its own error.
func TestClockVersionCollision(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("clock")
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	run := func(args ...string) result {
		return h.runWith(t.Context(), nil, func(a *app) { a.now = func() time.Time { return at } }, args...)
	}
	args := []string{"-o", "json", "publish", "clock", "--dataset", "static=" + fd.staticURI}
	for _, want := range []string{"2026-03-01T12-00-00", "2026-03-01T12-00-01"} {
		r := run(args...)
		var resp api.PublishResponse
		decodeJSON(t, r.stdout, &resp)
		if r.code != 0 || resp.Release.Version != want {
			t.Fatalf("publish at the same second: exit %d, version %q, want %s; stderr %s", r.code, resp.Release.Version, want, r.stderr)
		}
	}
	missing := "static=file://" + fd.root + "/no-such-dir/"
	r := run("publish", "clock", "--dataset", missing)
	line := checkFailure(t, nil, r, "no-such-dir")
	if strings.Contains(line, "already exists") {
		t.Errorf("a failing publish in the same second reported %q, not its own error", line)
	}
}

// TestPublishMarkerSources gives markers per dataset, by flag and by
// template; a dataset's own marker beats the default.
func TestPublishMarkerSources(t *testing.T) {
	h := newHarness(t)
	root := t.TempDir()
	makeTree(t, root, map[string]string{
		"a/v1/x": "x", "a/v1/_OK": "", "b/v1/y": "y", "b/v1/_SUCCESS": "",
		"a/v2/x": "x", "a/v2/_OK": "", "b/v2/y": "y", // b/v2 not finished
	})
	h.createChannel("ms")
	a, b := "a=file://"+root+"/a/{VERSION}/", "b=file://"+root+"/b/{VERSION}/"
	h.fails([]string{"publish", "ms", "--dataset", a, "--dataset", b, "--require-marker", "_SUCCESS", "--version", "v1"},
		"dataset a", "marker _SUCCESS missing")
	out := h.ok("publish", "ms", "--dataset", a, "--dataset", b, "--require-marker", "_SUCCESS", "--dataset-marker", "a=_OK")
	wantText(t, out, "published ms/v1")
	tmpl := writeFile(t, "t.yaml", "requireMarker: _SUCCESS\ndatasets:\n  - {name: a, uri: 'file://"+root+"/a/{VERSION}/', marker: _OK}\n"+
		"  - {name: b, uri: 'file://"+root+"/b/{VERSION}/'}\n")
	r := h.run("publish", "ms", "-f", tmpl)
	checkFailure(t, nil, r, "nothing new", "v1", "dataset b", "marker _SUCCESS missing")
	h.fails([]string{"publish", "ms", "--dataset", a, "--dataset-marker", "c=_OK"}, "--dataset-marker", `no dataset "c"`)
}
