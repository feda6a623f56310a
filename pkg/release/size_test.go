package release_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestTotalsSaturate: sizes a manifest never validated for (two files of
// the largest int64) add up to the largest int64, not to a negative total
// that would show as "-2 B" and pass any space check.
func TestTotalsSaturate(t *testing.T) {
	huge := release.Manifest{Files: []release.File{{Path: "a", Size: math.MaxInt64}, {Path: "b", Size: math.MaxInt64}}}
	if got := huge.TotalSize(); got != math.MaxInt64 {
		t.Errorf("TotalSize = %d, want %d", got, int64(math.MaxInt64))
	}
	rel := release.Release{Datasets: []release.Dataset{{Manifest: huge}, {Manifest: huge}}}
	if got := rel.Summarize().Bytes; got != math.MaxInt64 {
		t.Errorf("Summarize().Bytes = %d, want %d", got, int64(math.MaxInt64))
	}
	for _, tc := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{-5, 7, 7},
	} {
		if got := release.AddSizes(tc.a, tc.b); got != tc.want {
			t.Errorf("AddSizes(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestReleaseSizeLimit: files each within 5 TiB that add up to more than
// 1 EiB are refused as a release; just under the limit is accepted.
func TestReleaseSizeLimit(t *testing.T) {
	// 64 datasets of 3277 files of 5 TiB are 1 EiB and 64 TiB; of 3276
	// files, 256 TiB less than 1 EiB.
	build := func(perDataset int) release.Release {
		r := release.Release{Channel: "big", Version: "v1"}
		for d := range release.MaxDatasets {
			files := make([]release.File, perDataset)
			for i := range files {
				files[i] = release.File{Path: fmt.Sprintf("f%d", i), Size: release.MaxFileSize}
			}
			r.Datasets = append(r.Datasets, release.Dataset{Name: fmt.Sprintf("d%d", d), Source: "s3://bucket/d/", Manifest: release.Manifest{Files: files}})
		}
		return r
	}
	checkErr(t, build(3277).Validate(), "datasets", "1 EiB")
	checkErr(t, build(3276).Validate(), "", "")
}
