package store

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestGzipManifestsIsJSONMarshal: the streamed encoding of the manifests
// is byte for byte what json.Marshal gives, names that look like JSON
// included.
func TestGzipManifestsIsJSONMarshal(t *testing.T) {
	file := func(p string) release.File { return release.File{Path: p, Size: 7, ETag: `"e"`} }
	for _, tc := range []struct {
		name     string
		datasets []release.Dataset
	}{
		{"one dataset", []release.Dataset{{Name: "index", Source: "s3://b/i/", Manifest: release.Manifest{Files: []release.File{file("a"), file("b/c")}}}}},
		{"several", []release.Dataset{
			{Name: "a", Source: "s3://b/a/", Manifest: release.Manifest{Files: []release.File{file("x")}}},
			{Name: "b", Source: "file:///data/b/", Manifest: release.Manifest{Files: []release.File{file("y"), file("z")}}},
		}},
		{"names that look like the key", []release.Dataset{{Name: "d", Source: `s3://b/"files":[]/`,
			Manifest: release.Manifest{Files: []release.File{file(`"files":[]`), file("<&>")}}}}},
		{"no files", []release.Dataset{{Name: "empty", Source: "s3://b/e/", Manifest: release.Manifest{Files: []release.File{}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.datasets)
			if err != nil {
				t.Fatal(err)
			}
			gz, err := gzipManifests(tc.datasets)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gunzipBytes(gz)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("streamed manifests:\n%s\nwant json.Marshal's:\n%s", got, want)
			}
		})
	}
}
