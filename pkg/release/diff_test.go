package release

import (
	"slices"
	"testing"
)

func TestDiffReleases(t *testing.T) {
	file := func(p string, size int64, etag string) File { return File{Path: p, Size: size, ETag: etag} }
	a := Release{Version: "a", Datasets: []Dataset{
		{Name: "ann", Manifest: Manifest{Files: []File{file("x", 1, "e1"), file("y", 2, "e2"), file("gone", 3, "e3")}}},
		{Name: "docs", Manifest: Manifest{Files: []File{file("d", 4, "e4")}}},
	}}
	b := Release{Version: "b", Datasets: []Dataset{
		{Name: "ann", Manifest: Manifest{Files: []File{file("x", 1, "e1"), file("y", 2, "changed"), file("new", 5, "e5")}}},
		{Name: "extra", Manifest: Manifest{Files: []File{file("z", 6, "e6")}}},
	}}
	d := DiffReleases(a, b)
	if !slices.Equal(d.DatasetsAdded, []string{"extra"}) || !slices.Equal(d.DatasetsRemoved, []string{"docs"}) {
		t.Errorf("datasets added %v removed %v, want [extra] [docs]", d.DatasetsAdded, d.DatasetsRemoved)
	}
	if d.BytesFrom != 10 || d.BytesTo != 14 {
		t.Errorf("bytes %d -> %d, want 10 -> 14", d.BytesFrom, d.BytesTo)
	}
	tests := []struct {
		name                    string
		added, removed, changed []string
		unchanged               int
	}{
		{"ann", []string{"new"}, []string{"gone"}, []string{"y"}, 1},
		{"docs", nil, []string{"d"}, nil, 0},
		{"extra", []string{"z"}, nil, nil, 0},
	}
	if len(d.Datasets) != len(tests) {
		t.Fatalf("%d dataset diffs, want %d", len(d.Datasets), len(tests))
	}
	for i, tt := range tests {
		got := d.Datasets[i]
		if got.Name != tt.name || !slices.Equal(got.Added, tt.added) || !slices.Equal(got.Removed, tt.removed) ||
			!slices.Equal(got.Changed, tt.changed) || got.Unchanged != tt.unchanged {
			t.Errorf("dataset %d = %+v, want %+v", i, got, tt)
		}
	}
	if d.Empty() || !DiffReleases(a, a).Empty() {
		t.Errorf("Empty: a vs b %v, a vs a %v; want false, true", d.Empty(), DiffReleases(a, a).Empty())
	}
}

func TestCheckSameDatasets(t *testing.T) {
	head := Summary{Version: "h", Datasets: []DatasetSummary{{Name: "a"}, {Name: "b"}}}
	tests := []struct {
		name  string
		head  Summary
		names []string
		ok    bool
	}{
		{"same set, other order", head, []string{"b", "a"}, true},
		{"no head yet", Summary{}, []string{"x"}, true},
		{"one removed", head, []string{"a"}, false},
		{"one added", head, []string{"a", "b", "c"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ds []Dataset
			for _, n := range tt.names {
				ds = append(ds, Dataset{Name: n})
			}
			if err := CheckSameDatasets(tt.head, ds); (err == nil) != tt.ok {
				t.Errorf("CheckSameDatasets = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
