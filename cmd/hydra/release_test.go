package main

import (
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

func TestReleaseCommands(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("rel")
	h.ok("publish", "rel", "--dataset", "data="+fd.dataURI, "--dataset", "static="+fd.staticURI, "--version", "v1")
	h.ok("publish", "rel", "--dataset", "data="+fd.dataURI, "--version", "v2", "--no-promote", "--allow-dataset-change")

	var list api.ReleaseList
	decodeJSON(t, h.ok("-o", "json", "release", "ls", "rel"), &list)
	if len(list.Releases) != 2 || list.Releases[0].Version != "v1" || list.Releases[1].Version != "v2" {
		t.Fatalf("release ls -o json = %+v, want v1, v2 in publish order", list.Releases)
	}
	wantText(t, h.ok("release", "ls", "rel"), "SEQ", "VERSION", "v1", "v2", "HEAD")

	var sum release.Summary
	decodeJSON(t, h.ok("-o", "json", "release", "show", "rel", "v1"), &sum)
	// data/v1 holds a.txt (11 bytes) and sub/b.bin (4096); static two files.
	if sum.Version != "v1" || len(sum.Datasets) != 2 || sum.Datasets[0].Files != 2 || sum.Datasets[0].Bytes != 11+4096 || sum.Files != 4 {
		t.Errorf("release show -o json = %+v", sum)
	}
	wantText(t, h.ok("release", "show", "rel", "v1"), "Version:", "v1", "4 files", "DATASET", "data", "static", "4.0 KiB")

	var rel release.Release
	decodeJSON(t, h.ok("-o", "json", "release", "show", "rel", "v1", "--manifest"), &rel)
	if len(rel.Datasets) != 2 || len(rel.Datasets[0].Manifest.Files) != 2 || rel.Datasets[0].Manifest.Files[1].Path != "sub/b.bin" {
		t.Errorf("release show --manifest -o json = %+v", rel)
	}
	wantText(t, h.ok("release", "show", "rel", "v1", "--manifest"), "DATASET data", "PATH", "sub/b.bin", "4096", "sha256:")

	h.fails([]string{"release", "show", "rel", "v9"}, "rel/v9", "not found")
	h.fails([]string{"release", "ls", "nope"}, "channel nope", "not found")
	h.fails([]string{"release", "show", "rel"}, "release show: expected CHANNEL VERSION, got 1 argument")
	h.fails([]string{"release", "lss", "rel"}, `release: unknown command "lss"`)
}
