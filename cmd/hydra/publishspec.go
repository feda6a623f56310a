package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/pkg/release"
)

// versionAuto asks for the newest version present under every dataset.
const versionAuto = "auto"

// publishTemplate is the YAML file of `publish -f`. Flags override and
// extend it.
type publishTemplate struct {
	Version   string            `json:"version,omitempty"`
	Datasets  []templateDataset `json:"datasets"`
	NoPromote bool              `json:"noPromote,omitempty"`
	// RequireMarker is every dataset's marker unless the dataset names its own.
	RequireMarker string `json:"requireMarker,omitempty"`
}

type templateDataset struct {
	Name string `json:"name"`
	URI  string `json:"uri"`
	// Marker is the key whose presence marks this dataset complete.
	Marker string `json:"marker,omitempty"`
}

// publishSpec is a publish checked for form, before anything is listed:
// the version is "auto", an explicit version, or still to be chosen.
type publishSpec struct {
	version   string
	datasets  []datasetSpec
	noPromote bool
	// marker is the default marker of datasets without their own.
	marker string
}

// datasetSpec is one dataset with its parsed source; origin names where
// it came from ("--dataset x=...", "-f t.yaml: datasets[0]") for errors.
type datasetSpec struct {
	name     string
	source   release.Source
	origin   string
	fromFlag bool
	// marker is the key that marks the dataset's upload finished.
	marker string
}

// publishFlags are the flags of `publish` as given.
type publishFlags struct {
	datasets  []string
	version   string
	template  string
	noPromote bool
	wait      bool
	// marker is --require-marker, markers the --dataset-marker NAME=KEY.
	marker  string
	markers []string
	// dryRun and allowDatasetChange are --dry-run and --allow-dataset-change.
	dryRun, allowDatasetChange bool
	// versionSet and noPromoteSet tell an explicit flag from its default,
	// since explicit flags override the template.
	versionSet, noPromoteSet bool
}

// buildSpec merges the template (if any) with the flags and checks every
// dataset name and URI, naming the flag value or template entry at fault.
func buildSpec(f publishFlags) (publishSpec, error) {
	var spec publishSpec
	if f.template != "" {
		t, err := readTemplate(f.template)
		if err != nil {
			return publishSpec{}, err
		}
		if spec, err = templateSpec(f.template, t); err != nil {
			return publishSpec{}, err
		}
	}
	for _, arg := range f.datasets {
		d, err := parseDatasetFlag(arg)
		if err != nil {
			return publishSpec{}, err
		}
		if err := spec.add(d); err != nil {
			return publishSpec{}, err
		}
	}
	if f.versionSet {
		spec.version = f.version
	}
	if f.noPromoteSet {
		spec.noPromote = f.noPromote
	}
	if f.marker != "" {
		spec.marker = f.marker
	}
	if err := spec.setMarkers(f.markers); err != nil {
		return publishSpec{}, err
	}
	return spec, spec.check()
}

// setMarkers applies each --dataset-marker NAME=KEY to its dataset.
func (s *publishSpec) setMarkers(args []string) error {
	for _, arg := range args {
		name, key, ok := strings.Cut(arg, "=")
		if !ok || key == "" {
			return usageError{fmt.Errorf("--dataset-marker %q: want NAME=KEY, e.g. ann=_SUCCESS", arg)}
		}
		i := slices.IndexFunc(s.datasets, func(d datasetSpec) bool { return d.name == name })
		if i < 0 {
			return usageError{fmt.Errorf("--dataset-marker %q: no dataset %q is given", arg, name)}
		}
		s.datasets[i].marker = key
	}
	return nil
}

// readTemplate decodes the YAML strictly: an unknown key is most likely a
// typo ("noPromte") whose silent loss would promote a release by accident.
func readTemplate(path string) (publishTemplate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return publishTemplate{}, fmt.Errorf("-f: %w", err)
	}
	var t publishTemplate
	if err := yaml.UnmarshalStrict(raw, &t); err != nil {
		return publishTemplate{}, fmt.Errorf("-f %s: %s", path, yamlReason(err))
	}
	return t, nil
}

// yamlReason drops the layers sigs.k8s.io/yaml adds around the decoder's
// message ("error unmarshaling JSON: while decoding JSON: json: ..."),
// which speak of JSON to someone who wrote YAML.
func yamlReason(err error) string {
	msg := err.Error()
	for _, layer := range []string{"error unmarshaling JSON: ", "while decoding JSON: ", "json: ", "error converting YAML to JSON: "} {
		msg = strings.TrimPrefix(msg, layer)
	}
	return msg
}

func templateSpec(path string, t publishTemplate) (publishSpec, error) {
	spec := publishSpec{version: t.Version, noPromote: t.NoPromote, marker: t.RequireMarker}
	for i, td := range t.Datasets {
		origin := fmt.Sprintf("-f %s: datasets[%d]", path, i)
		d, err := newDatasetSpec(td.Name, td.URI, origin)
		if err != nil {
			return publishSpec{}, err
		}
		d.marker = td.Marker
		if err := spec.add(d); err != nil {
			return publishSpec{}, err
		}
	}
	return spec, nil
}

// parseDatasetFlag parses one --dataset NAME=URI.
func parseDatasetFlag(arg string) (datasetSpec, error) {
	origin := fmt.Sprintf("--dataset %q", arg)
	name, uri, ok := strings.Cut(arg, "=")
	if !ok {
		return datasetSpec{}, fmt.Errorf("%s: want NAME=URI, e.g. model=s3://bucket/models/{VERSION}/", origin)
	}
	d, err := newDatasetSpec(name, uri, origin)
	d.fromFlag = true
	return d, err
}

func newDatasetSpec(name, uri, origin string) (datasetSpec, error) {
	if err := release.ValidateDatasetName(name); err != nil {
		return datasetSpec{}, fmt.Errorf("%s: dataset %w", origin, err)
	}
	src, err := release.ParseSource(uri)
	if err != nil {
		return datasetSpec{}, fmt.Errorf("%s: %w", origin, err)
	}
	return datasetSpec{name: name, source: src, origin: origin}, nil
}

// add appends a dataset. A flag may replace a template dataset of the same
// name (that is how flags override a template); two datasets of one name
// from the same place are a mistake.
func (s *publishSpec) add(d datasetSpec) error {
	for i, prev := range s.datasets {
		if prev.name != d.name {
			continue
		}
		if d.fromFlag && !prev.fromFlag {
			s.datasets[i] = d
			return nil
		}
		return fmt.Errorf("%s: dataset %q is already given by %s", d.origin, d.name, prev.origin)
	}
	s.datasets = append(s.datasets, d)
	return nil
}

// check verifies what can be checked without listing: datasets present,
// version well-formed, and a placeholder for --version auto to fill.
func (s publishSpec) check() error {
	switch {
	case len(s.datasets) == 0:
		return errors.New("publish: no datasets: give --dataset NAME=URI (repeatable) or -f TEMPLATE.yaml")
	case len(s.datasets) > release.MaxDatasets:
		return fmt.Errorf("publish: %d datasets, at most %d allowed", len(s.datasets), release.MaxDatasets)
	case s.version == versionAuto && !s.hasPlaceholder():
		return fmt.Errorf("--version auto: no dataset URI contains %s to resolve", release.VersionPlaceholder)
	case s.version != "" && s.version != versionAuto:
		if err := release.ValidateVersion(s.version); err != nil {
			return fmt.Errorf("--version: %w", err)
		}
	}
	for _, d := range s.datasets {
		if m := d.markerOr(s.marker); m != "" {
			if err := release.ValidatePath(m); err != nil {
				return fmt.Errorf("dataset %s: marker: %w", d.name, err)
			}
		}
	}
	return nil
}

// markerOr is the dataset's own marker, else def.
func (d datasetSpec) markerOr(def string) string {
	if d.marker != "" {
		return d.marker
	}
	return def
}

func (s publishSpec) hasPlaceholder() bool {
	for _, d := range s.datasets {
		if d.source.HasPlaceholder() {
			return true
		}
	}
	return false
}

// placeholderSources are the sources that --version auto resolves across.
// A dataset without {VERSION} is the same in every release (shared
// configuration, say) and has no say in which version is picked.
func (s publishSpec) placeholderSources() []release.Source {
	var out []release.Source
	for _, d := range s.datasets {
		if d.source.HasPlaceholder() {
			out = append(out, d.source)
		}
	}
	return out
}
