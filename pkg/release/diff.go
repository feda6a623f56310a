package release

import (
	"sort"
	"strings"
)

// Diff is how release B differs from release A, dataset by dataset.
type Diff struct {
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// DatasetsAdded and DatasetsRemoved name datasets only B or only A has.
	DatasetsAdded   []string `json:"datasetsAdded,omitempty"`
	DatasetsRemoved []string `json:"datasetsRemoved,omitempty"`
	// Datasets holds the file changes of every dataset present in either.
	Datasets []DatasetDiff `json:"datasets"`
	// BytesFrom and BytesTo are the total sizes of A and B.
	BytesFrom int64 `json:"bytesFrom"`
	BytesTo   int64 `json:"bytesTo"`
}

// DatasetDiff is the file-level difference of one dataset.
type DatasetDiff struct {
	Name    string   `json:"name"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	// Changed lists paths in both whose size, ETag or checksum differ.
	Changed   []string `json:"changed,omitempty"`
	Unchanged int      `json:"unchanged"`
	BytesFrom int64    `json:"bytesFrom"`
	BytesTo   int64    `json:"bytesTo"`
}

// Empty reports whether the two releases hold the same files.
func (d Diff) Empty() bool {
	if len(d.DatasetsAdded)+len(d.DatasetsRemoved) > 0 {
		return false
	}
	for _, ds := range d.Datasets {
		if len(ds.Added)+len(ds.Removed)+len(ds.Changed) > 0 {
			return false
		}
	}
	return true
}

// DiffReleases compares release b with release a (a may be the zero
// Release: everything in b is then added). It reads only the manifests.
func DiffReleases(a, b Release) Diff {
	d := Diff{From: a.Version, To: b.Version}
	byName := func(r Release) map[string]Manifest {
		m := make(map[string]Manifest, len(r.Datasets))
		for _, ds := range r.Datasets {
			m[ds.Name] = ds.Manifest
		}
		return m
	}
	ma, mb := byName(a), byName(b)
	d.DatasetsAdded, d.DatasetsRemoved = setDiff(keys(ma), keys(mb))
	names := keys(ma)
	for n := range mb {
		if _, ok := ma[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		dd := diffManifests(n, ma[n], mb[n])
		d.BytesFrom += dd.BytesFrom
		d.BytesTo += dd.BytesTo
		d.Datasets = append(d.Datasets, dd)
	}
	return d
}

func diffManifests(name string, a, b Manifest) DatasetDiff {
	d := DatasetDiff{Name: name, BytesFrom: a.TotalSize(), BytesTo: b.TotalSize()}
	old := make(map[string]File, len(a.Files))
	for _, f := range a.Files {
		old[f.Path] = f
	}
	for _, f := range b.Files {
		prev, ok := old[f.Path]
		switch {
		case !ok:
			d.Added = append(d.Added, f.Path)
		case !sameFile(prev, f):
			d.Changed = append(d.Changed, f.Path)
		default:
			d.Unchanged++
		}
		delete(old, f.Path)
	}
	for p := range old {
		d.Removed = append(d.Removed, p)
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return d
}

func sameFile(a, b File) bool {
	if a.Size != b.Size || a.ETag != b.ETag {
		return false
	}
	if a.Checksum == nil || b.Checksum == nil {
		return a.Checksum == nil && b.Checksum == nil
	}
	return *a.Checksum == *b.Checksum
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// setDiff returns the names only in b (added) and only in a (removed), sorted.
func setDiff(a, b []string) (added, removed []string) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, n := range a {
		inA[n] = true
	}
	for _, n := range b {
		inB[n] = true
		if !inA[n] {
			added = append(added, n)
		}
	}
	for _, n := range a {
		if !inB[n] {
			removed = append(removed, n)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// CheckSameDatasets refuses a release whose dataset names differ from the
// head's: the head's datasets are directories pods read under current/,
// and a release without one of them would remove it under running pods.
func CheckSameDatasets(head Summary, next []Dataset) error {
	if head.Version == "" {
		return nil
	}
	have := make([]string, 0, len(head.Datasets))
	for _, d := range head.Datasets {
		have = append(have, d.Name)
	}
	want := make([]string, 0, len(next))
	for _, d := range next {
		want = append(want, d.Name)
	}
	added, removed := setDiff(have, want)
	if len(added)+len(removed) == 0 {
		return nil
	}
	return invalid("datasets", "", "differ from the head %s's (added: %s; removed: %s); publish with allowDatasetChange (--allow-dataset-change) if this is intended",
		head.Version, listOrNone(added), listOrNone(removed))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
