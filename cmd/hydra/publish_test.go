package main

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// makeTree writes files (relative path → content) below root.
func makeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fileData is a local tree with three versions of a dataset and an
// unversioned one, and the URIs that point at them.
type fileData struct {
	root      string
	dataURI   string // with {VERSION}
	staticURI string // no placeholder
}

func newFileData(t *testing.T) fileData {
	t.Helper()
	root := t.TempDir()
	makeTree(t, root, map[string]string{
		"data/v1/a.txt":         "version one",
		"data/v1/sub/b.bin":     strings.Repeat("b", 4096),
		"data/v2/a.txt":         "version two",
		"data/v10/a.txt":        "version ten", // natural order: v10 is newest
		"static/settings.json":  `{"threads": 4}`,
		"static/nested/x/y.txt": "y",
	})
	return fileData{
		root:      root,
		dataURI:   "file://" + root + "/data/{VERSION}/",
		staticURI: "file://" + root + "/static/",
	}
}

func TestPublishFile(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("files")

	t.Run("explicit version fills the placeholder", func(t *testing.T) {
		h := h.sub(t)
		var resp api.PublishResponse
		decodeJSON(t, h.ok("-o", "json", "publish", "files", "--dataset", "data="+fd.dataURI, "--version", "v1"), &resp)
		if resp.Release.Version != "v1" || !resp.Promoted || resp.Head != "v1" {
			t.Fatalf("publish = %+v, want v1 promoted", resp)
		}
		checkFileManifest(t, h, "files", "v1", "data", filepath.Join(fd.root, "data", "v1"))
	})
	t.Run("placeholder without version resolves auto, static dataset joins", func(t *testing.T) {
		h := h.sub(t)
		out := h.ok("publish", "files", "--dataset", "data="+fd.dataURI, "--dataset", "static="+fd.staticURI, "--allow-dataset-change")
		wantText(t, out, "published files/v10", "promoted: head is v10", "static", "data")
		checkFileManifest(t, h, "files", "v10", "static", filepath.Join(fd.root, "static"))
	})
	t.Run("no placeholder, no version: timestamp version", func(t *testing.T) {
		h := h.sub(t)
		var resp api.PublishResponse
		decodeJSON(t, h.ok("-o", "json", "publish", "files", "--dataset", "static="+fd.staticURI, "--allow-dataset-change"), &resp)
		if _, ok := release.ParseVersionTime(resp.Release.Version); !ok || resp.Head != resp.Release.Version {
			t.Errorf("publish = %+v, want a promoted YYYY-MM-DDThh-mm-ss version", resp)
		}
	})
	t.Run("no-promote leaves the head", func(t *testing.T) {
		h := h.sub(t)
		before := h.channel("files").Head
		out := h.ok("publish", "files", "--dataset", "data="+fd.dataURI, "--version", "v2", "--no-promote", "--allow-dataset-change")
		wantText(t, out, "published files/v2", "not promoted: head stays "+before)
		if got := h.channel("files").Head; got != before {
			t.Errorf("head after --no-promote = %s, want %s", got, before)
		}
	})
	t.Run("duplicate version", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "files", "--dataset", "data=" + fd.dataURI, "--version", "v1"},
			"files/v1", "already exists")
	})
	t.Run("unknown channel", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "nope", "--dataset", "data=" + fd.dataURI, "--version", "v1"},
			"channel nope", "not found")
	})
	t.Run("missing directory", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "files", "--dataset", "data=file://" + fd.root + "/absent/", "--version", "v7"},
			"dataset data", "absent")
	})
}

// checkFileManifest compares a stored manifest with the directory it was
// listed from: every regular file, its size and its SHA-256.
func checkFileManifest(t *testing.T, h *harness, channel, version, dataset, dir string) {
	t.Helper()
	rel, err := h.admin.GetManifest(t.Context(), channel, version)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rel.Datasets, func(d release.Dataset) bool { return d.Name == dataset })
	if i < 0 {
		t.Fatalf("release %s/%s has no dataset %s: %+v", channel, version, dataset, rel.Datasets)
	}
	var want []release.File
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		want = append(want, release.File{Path: filepath.ToSlash(r), Size: int64(len(b)),
			Checksum: &release.Checksum{Algorithm: release.ChecksumSHA256, Value: base64.StdEncoding.EncodeToString(sum[:])}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rel.Datasets[i].Manifest.Files
	if len(got) != len(want) {
		t.Fatalf("manifest of %s has %d files, directory has %d:\n%+v", dataset, len(got), len(want), got)
	}
	for j := range want {
		g, w := got[j], want[j]
		if g.Path != w.Path || g.Size != w.Size || g.Checksum == nil || *g.Checksum != *w.Checksum {
			t.Errorf("manifest file %d = %+v (checksum %+v), want %+v (checksum %+v)", j, g, g.Checksum, w, w.Checksum)
		}
	}
}

func TestPublishTemplate(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("tmpl")
	tmpl := func(body string) string { return writeFile(t, "publish.yaml", body) }
	base := tmpl("version: v1\ndatasets:\n  - name: data\n    uri: " + fd.dataURI + "\n")

	// The template alone.
	h.ok("publish", "tmpl", "-f", base)
	if ch := h.channel("tmpl"); ch.Head != "v1" {
		t.Errorf("head after template publish = %q, want v1", ch.Head)
	}
	// Flags override the version and add a dataset.
	var resp api.PublishResponse
	decodeJSON(t, h.ok("-o", "json", "publish", "tmpl", "-f", base, "--version", "v2", "--dataset", "static="+fd.staticURI, "--allow-dataset-change"), &resp)
	names := []string{}
	for _, d := range resp.Release.Datasets {
		names = append(names, d.Name)
	}
	if resp.Release.Version != "v2" || !slices.Equal(names, []string{"data", "static"}) {
		t.Errorf("template+flags published %s with %v, want v2 with [data static]", resp.Release.Version, names)
	}
	// A flag dataset of a template dataset's name replaces it.
	decodeJSON(t, h.ok("-o", "json", "publish", "tmpl", "-f", base, "--version", "v5", "--dataset", "data="+fd.staticURI, "--allow-dataset-change"), &resp)
	if ds := resp.Release.Datasets; len(ds) != 1 || ds[0].Name != "data" || ds[0].Source != fd.staticURI {
		t.Errorf("flag over template dataset published %+v, want data from %s", ds, fd.staticURI)
	}
	// noPromote in the template is honoured.
	noPromote := tmpl("version: v10\nnoPromote: true\ndatasets:\n  - {name: data, uri: '" + fd.dataURI + "'}\n")
	h.ok("publish", "tmpl", "-f", noPromote)
	if ch := h.channel("tmpl"); ch.Head != "v5" {
		t.Errorf("head after noPromote template = %q, want v5", ch.Head)
	}

	tests := []struct {
		name string
		body string
		want []string
	}{
		{"unknown key", "version: v3\nnoPromte: true\ndatasets: [{name: data, uri: '" + fd.dataURI + "'}]\n", []string{"noPromte", "unknown field"}},
		{"bad uri", "datasets: [{name: data, uri: 'ftp://x/y/'}]\n", []string{"datasets[0]", "ftp://x/y/", "scheme"}},
		{"duplicate name", "datasets: [{name: d, uri: '" + fd.staticURI + "'}, {name: d, uri: '" + fd.staticURI + "'}]\n", []string{"datasets[1]", `"d"`, "already given"}},
		{"no datasets", "version: v3\n", []string{"no datasets"}},
		{"not yaml", "datasets: [\n", []string{"publish.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.sub(t).fails([]string{"publish", "tmpl", "-f", writeFile(t, "publish.yaml", tt.body)}, tt.want...)
		})
	}
	t.Run("missing file", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "tmpl", "-f", filepath.Join(t.TempDir(), "none.yaml")}, "-f", "none.yaml")
	})
}

// TestPublishArgumentErrors checks the refusals that happen before the
// manager or any source is asked.
func TestPublishArgumentErrors(t *testing.T) {
	h := newHarness(t)
	h.createChannel("args")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--dataset", "foo"}, []string{`--dataset "foo"`, "NAME=URI"}},
		{[]string{"--dataset", "-bad=s3://bucket/p/"}, []string{`--dataset "-bad=s3://bucket/p/"`, `name "-bad"`}},
		{[]string{"--dataset", "bad/name=s3://bucket/p/"}, []string{`"bad/name=s3://bucket/p/"`, "name"}},
		// Bad_Name is a valid dataset name (release.ValidateDatasetName);
		// the one-letter bucket "b" is what is refused.
		{[]string{"--dataset", "Bad_Name=s3://b/p/"}, []string{`--dataset "Bad_Name=s3://b/p/"`, `bucket "b"`}},
		{[]string{"--dataset", "x=ftp://host/p/"}, []string{`--dataset "x=ftp://host/p/"`, "scheme must be s3 or file"}},
		{[]string{"--dataset", "x=file://host/p/"}, []string{`"x=file://host/p/"`, "file:///ABSOLUTE/DIR/"}},
		{[]string{"--dataset", "x=s3://bucket/{VERSION}/{VERSION}/"}, []string{"at most once"}},
		{[]string{"--dataset", "x=s3://bucket/a/", "--dataset", "x=s3://bucket/b/"}, []string{`dataset "x" is already given`}},
		{[]string{}, []string{"no datasets"}},
		{[]string{"--dataset", "x=s3://bucket/a/", "--version", "auto"}, []string{"--version auto", "{VERSION}"}},
		{[]string{"--dataset", "x=s3://bucket/a/", "--version", "../etc"}, []string{"--version", `"../etc"`}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h.sub(t).fails(append([]string{"publish", "args"}, tt.args...), tt.want...)
		})
	}
	t.Run("no channel", func(t *testing.T) {
		h.sub(t).fails([]string{"publish"}, "publish: expected CHANNEL, got no arguments")
	})
	t.Run("bad channel name", func(t *testing.T) {
		h.sub(t).fails([]string{"publish", "Args", "--dataset", "x=s3://bucket/a/"}, `"Args"`, "DNS-1123")
	})
}
