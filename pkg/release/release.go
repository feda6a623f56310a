package release

import (
	"fmt"
	"time"
)

// MaxDatasets bounds how many datasets one release may have.
const MaxDatasets = 64

// Dataset is one named part of a release: where its bytes live and the
// exact list of files it is made of.
type Dataset struct {
	// Name is the directory under current/ that applications read.
	Name string `json:"name"`
	// Source is the resolved URI (no {VERSION} placeholder left).
	Source string `json:"source"`
	// Manifest lists the files; omitted in summaries.
	Manifest Manifest `json:"manifest"`
}

// Release is one immutable, complete version of a channel's data.
type Release struct {
	Channel string `json:"channel"`
	Version string `json:"version"`
	// Seq is the publish order within the channel, assigned by the store.
	Seq       uint64    `json:"seq"`
	CreatedAt time.Time `json:"createdAt"`
	// Publisher names the token identity that published the release.
	Publisher string    `json:"publisher,omitempty"`
	Datasets  []Dataset `json:"datasets"`
}

// Summary is a release without its manifests, with sizes worked out.
type Summary struct {
	Channel   string           `json:"channel"`
	Version   string           `json:"version"`
	Seq       uint64           `json:"seq"`
	CreatedAt time.Time        `json:"createdAt"`
	Publisher string           `json:"publisher,omitempty"`
	Files     int              `json:"files"`
	Bytes     int64            `json:"bytes"`
	Datasets  []DatasetSummary `json:"datasets"`
}

// DatasetSummary is a dataset without its manifest.
type DatasetSummary struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

// Summarize drops the manifests and keeps the counts.
func (r Release) Summarize() Summary {
	s := Summary{Channel: r.Channel, Version: r.Version, Seq: r.Seq, CreatedAt: r.CreatedAt, Publisher: r.Publisher}
	for _, d := range r.Datasets {
		ds := DatasetSummary{Name: d.Name, Source: d.Source, Files: len(d.Manifest.Files), Bytes: d.Manifest.TotalSize()}
		s.Files += ds.Files
		s.Bytes = AddSizes(s.Bytes, ds.Bytes)
		s.Datasets = append(s.Datasets, ds)
	}
	return s
}

// Validate checks everything a publisher controls: channel, version, and
// each dataset's name, source and manifest. Seq, CreatedAt and Publisher are
// set by the manager and not checked here.
func (r Release) Validate() error {
	if err := ValidateChannelName(r.Channel); err != nil {
		return err
	}
	if err := ValidateVersion(r.Version); err != nil {
		return err
	}
	switch {
	case len(r.Datasets) == 0:
		return invalid("datasets", "", "must list at least one dataset")
	case len(r.Datasets) > MaxDatasets:
		return invalid("datasets", "", "must list at most %d datasets, got %d", MaxDatasets, len(r.Datasets))
	}
	seen := make(map[string]int, len(r.Datasets))
	for i, d := range r.Datasets {
		field := fmt.Sprintf("datasets[%d]", i)
		if err := d.Validate(); err != nil {
			return prefixed(field, err)
		}
		if j, dup := seen[d.Name]; dup {
			return invalid(field+".name", d.Name, "duplicate of datasets[%d]", j)
		}
		seen[d.Name] = i
	}
	if total := r.Summarize().Bytes; total > MaxReleaseSize {
		return invalid("datasets", fmt.Sprint(total), "the release's files add up to more than %d bytes (1 EiB)", int64(MaxReleaseSize))
	}
	return nil
}

// Validate checks a dataset's name, resolved source and manifest.
func (d Dataset) Validate() error {
	if err := ValidateDatasetName(d.Name); err != nil {
		return err
	}
	src, err := ParseSource(d.Source)
	if err != nil {
		return err
	}
	if src.HasPlaceholder() {
		return invalid("source", d.Source, "still contains %s; resolve the version before publishing", VersionPlaceholder)
	}
	if err := d.Manifest.Validate(); err != nil {
		return prefixed("manifest", err)
	}
	return nil
}
