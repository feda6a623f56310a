package release_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// goodRelease returns a fresh valid release of two datasets; tests mutate
// their own copy.
func goodRelease() release.Release {
	return release.Release{
		Channel:   "search-index",
		Version:   "2019-12-15T00-00-00",
		Seq:       7,
		CreatedAt: time.Date(2019, 12, 15, 0, 0, 1, 0, time.UTC),
		Publisher: "ci",
		Datasets: []release.Dataset{
			{
				Name:   "ann",
				Source: "s3://hydra-data/ann/2019-12-15T00-00-00/",
				Manifest: release.Manifest{Files: []release.File{
					{Path: "index.bin", Size: 100, ETag: `"abc"`, Checksum: &release.Checksum{Algorithm: release.ChecksumCRC64NVME, Value: digest(8)}},
					{Path: "shards/0.bin", Size: 50},
				}},
			},
			{
				Name:   "kv",
				Source: "file:///srv/kv/v1/",
				Manifest: release.Manifest{Files: []release.File{
					{Path: "a.sst", Size: 1},
					{Path: "b.sst", Size: 2},
					{Path: "meta/manifest.json", Size: 3},
				}},
			},
		},
	}
}

// datasets returns n valid datasets with distinct names.
func datasets(n int) []release.Dataset {
	ds := make([]release.Dataset, n)
	for i := range ds {
		ds[i] = release.Dataset{Name: fmt.Sprintf("d%d", i), Source: "s3://bucket/d/", Manifest: files("f")}
	}
	return ds
}

func TestReleaseValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*release.Release)
		field  string // empty: must be accepted
		reason string
	}{
		{name: "good", mutate: func(*release.Release) {}},
		{name: "manager fields unchecked", mutate: func(r *release.Release) { r.Seq, r.CreatedAt, r.Publisher = 0, time.Time{}, "" }},
		{name: "64 datasets", mutate: func(r *release.Release) { r.Datasets = datasets(64) }},
		{name: "bad channel", mutate: func(r *release.Release) { r.Channel = "Search" }, field: "channel"},
		{name: "empty channel", mutate: func(r *release.Release) { r.Channel = "" }, field: "channel"},
		{name: "bad version", mutate: func(r *release.Release) { r.Version = "../x" }, field: "version"},
		{name: "nil datasets", mutate: func(r *release.Release) { r.Datasets = nil }, field: "datasets", reason: "at least one dataset"},
		{name: "empty datasets", mutate: func(r *release.Release) { r.Datasets = []release.Dataset{} }, field: "datasets", reason: "at least one dataset"},
		{name: "65 datasets", mutate: func(r *release.Release) { r.Datasets = datasets(65) }, field: "datasets", reason: "at most 64 datasets, got 65"},
		{
			name:   "duplicate dataset names",
			mutate: func(r *release.Release) { r.Datasets = append(r.Datasets, r.Datasets[0]) },
			field:  "datasets[2].name", reason: "duplicate of datasets[0]",
		},
		{name: "bad dataset name", mutate: func(r *release.Release) { r.Datasets[1].Name = ".kv" }, field: "datasets[1].name"},
		{name: "empty dataset name", mutate: func(r *release.Release) { r.Datasets[0].Name = "" }, field: "datasets[0].name", reason: "must not be empty"},
		{name: "bad source", mutate: func(r *release.Release) { r.Datasets[0].Source = "gs://x/y/" }, field: "datasets[0].source", reason: "scheme"},
		{name: "traversal in source", mutate: func(r *release.Release) { r.Datasets[1].Source = "file:///srv/../etc/" }, field: "datasets[1].source"},
		{
			name:   "placeholder left in source",
			mutate: func(r *release.Release) { r.Datasets[1].Source = "s3://bucket/kv/{VERSION}/" },
			field:  "datasets[1].source", reason: "still contains {VERSION}",
		},
		{
			name:   "nested bad path",
			mutate: func(r *release.Release) { r.Datasets[1].Manifest.Files[2].Path = "meta/../../etc/passwd" },
			field:  "datasets[1].manifest.files[2].path", reason: `".." segments`,
		},
		{
			name:   "nested duplicate path",
			mutate: func(r *release.Release) { r.Datasets[1].Manifest.Files[1].Path = "a.sst" },
			field:  "datasets[1].manifest.files[1].path", reason: "duplicate of files[0]",
		},
		{
			name:   "nested file-directory clash",
			mutate: func(r *release.Release) { r.Datasets[0].Manifest.Files[0].Path = "shards" },
			field:  "datasets[0].manifest.files[0].path", reason: "directory of files[1]",
		},
		{name: "empty manifest", mutate: func(r *release.Release) { r.Datasets[0].Manifest = release.Manifest{} }, field: "datasets[0].manifest.files"},
		{name: "nested negative size", mutate: func(r *release.Release) { r.Datasets[1].Manifest.Files[0].Size = -1 }, field: "datasets[1].manifest.files[0].size"},
		{name: "nested bad etag", mutate: func(r *release.Release) { r.Datasets[0].Manifest.Files[1].ETag = "x\ny" }, field: "datasets[0].manifest.files[1].etag"},
		{
			name:   "nested bad checksum",
			mutate: func(r *release.Release) { r.Datasets[0].Manifest.Files[0].Checksum.Value = digest(4) },
			field:  "datasets[0].manifest.files[0].checksum.value", reason: "must be 8 bytes, got 4",
		},
		{
			name:   "nested bad checksum algorithm",
			mutate: func(r *release.Release) { r.Datasets[0].Manifest.Files[0].Checksum.Algorithm = "crc32" },
			field:  "datasets[0].manifest.files[0].checksum.algorithm",
		},
		{
			name: "first bad dataset reported",
			mutate: func(r *release.Release) {
				r.Datasets[0].Manifest.Files[1].Size = -1
				r.Datasets[1].Name = ""
			},
			field: "datasets[0].manifest.files[1].size",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := goodRelease()
			tc.mutate(&r)
			checkErr(t, r.Validate(), tc.field, tc.reason)
		})
	}
}

func TestSummarize(t *testing.T) {
	r := goodRelease()
	want := release.Summary{
		Channel:   r.Channel,
		Version:   r.Version,
		Seq:       r.Seq,
		CreatedAt: r.CreatedAt,
		Publisher: r.Publisher,
		Files:     5,
		Bytes:     156,
		Datasets: []release.DatasetSummary{
			{Name: "ann", Source: "s3://hydra-data/ann/2019-12-15T00-00-00/", Files: 2, Bytes: 150},
			{Name: "kv", Source: "file:///srv/kv/v1/", Files: 3, Bytes: 6},
		},
	}
	tests := []struct {
		name string
		in   release.Release
		want release.Summary
	}{
		{name: "two datasets", in: r, want: want},
		{name: "no datasets", in: release.Release{Channel: "c", Version: "v"}, want: release.Summary{Channel: "c", Version: "v"}},
		{
			name: "empty manifest",
			in:   release.Release{Channel: "c", Version: "v", Datasets: []release.Dataset{{Name: "d", Source: "s3://b-1/"}}},
			want: release.Summary{Channel: "c", Version: "v", Datasets: []release.DatasetSummary{{Name: "d", Source: "s3://b-1/"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Summarize(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Summarize() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
