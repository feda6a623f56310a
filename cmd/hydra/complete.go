package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// completeness is what makes a listed dataset publishable: its marker
// present (when one is asked for), at least one file, at least the
// channel's minimum of files.
type completeness struct {
	// marker is the default marker (--require-marker, the template's or
	// the channel's requireMarker); a dataset may name its own.
	marker     string
	minObjects int
}

func newCompleteness(spec publishSpec, cfg release.Config) completeness {
	c := completeness{marker: spec.marker, minObjects: cfg.MinObjects}
	if c.marker == "" {
		c.marker = cfg.RequireMarker
	}
	return c
}

// check refuses an incomplete dataset naming it, its source and what is
// missing, and returns the manifest without the marker, which marks the
// upload rather than being data.
func (c completeness) check(d datasetSpec, src release.Source, m release.Manifest) (release.Manifest, error) {
	if marker := d.markerOr(c.marker); marker != "" {
		i := slices.IndexFunc(m.Files, func(f release.File) bool { return f.Path == marker })
		if i < 0 {
			return m, refuse(exitInvalid, "dataset %s: marker %s missing under %s (upload not finished?)", d.name, marker, src)
		}
		m.Files = slices.Delete(slices.Clone(m.Files), i, i+1)
	}
	switch {
	case len(m.Files) == 0:
		return m, refuse(exitInvalid, "dataset %s: %s holds no files", d.name, src)
	case c.minObjects > 0 && len(m.Files) < c.minObjects:
		return m, refuse(exitInvalid, "dataset %s: %s holds %d files, the channel's minObjects is %d",
			d.name, src, len(m.Files), c.minObjects)
	}
	return m, nil
}

// listComplete lists each dataset's source, resolved to version, into its
// manifest, refusing the first incomplete one.
func listComplete(ctx context.Context, l source.Lister, spec publishSpec, c completeness, version string) ([]release.Dataset, error) {
	out := make([]release.Dataset, 0, len(spec.datasets))
	for _, d := range spec.datasets {
		src := d.source.WithVersion(version)
		m, err := l.List(ctx, src)
		if errors.Is(err, source.ErrEmpty) {
			return nil, codedError{code: exitInvalid, err: fmt.Errorf("dataset %s: %w", d.name, err)}
		}
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.name, err)
		}
		if m, err = c.check(d, src, m); err != nil {
			return nil, err
		}
		out = append(out, release.Dataset{Name: d.name, Source: src.String(), Manifest: m})
	}
	return out, nil
}

// resolveAuto implements --version auto: the newest version present under
// every {VERSION} source whose datasets are all complete. It stops at the
// first version the channel already holds: nothing older is new either,
// and that outcome is errNothingNew, not a failure.
func resolveAuto(ctx context.Context, l source.Lister, spec publishSpec, c completeness, existing map[string]bool) (string, []release.Dataset, error) {
	versions, err := commonVersions(ctx, l, spec.placeholderSources())
	if err != nil {
		return "", nil, fmt.Errorf("--version auto: %w", err)
	}
	if len(versions) == 0 {
		// No version at all: the resolver's message says which source lacks one.
		_, err := source.ResolveVersion(ctx, l, spec.placeholderSources())
		return "", nil, fmt.Errorf("--version auto: %w", err)
	}
	var skipped []string
	for _, v := range versions {
		if existing[v] {
			return "", nil, fmt.Errorf("%w: %s is the newest complete version and is already published%s",
				errNothingNew, v, skippedNote(skipped))
		}
		datasets, err := listComplete(ctx, l, spec, c, v)
		var coded codedError
		if asCoded(err, &coded) && coded.code == exitInvalid {
			skipped = append(skipped, v+": "+err.Error())
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return v, datasets, nil
	}
	return "", nil, fmt.Errorf("%w: no complete version yet%s", errNothingNew, skippedNote(skipped))
}

func skippedNote(skipped []string) string {
	if len(skipped) == 0 {
		return ""
	}
	return " (passed over " + strings.Join(skipped, "; ") + ")"
}

// commonVersions are the versions present under every source, newest first.
func commonVersions(ctx context.Context, l source.Lister, sources []release.Source) ([]string, error) {
	count := map[string]int{}
	for _, src := range sources {
		vs, err := l.Versions(ctx, src)
		if err != nil {
			return nil, err
		}
		for _, v := range slices.Compact(slices.Sorted(slices.Values(vs))) {
			count[v]++
		}
	}
	var out []string
	for v, n := range count {
		if n == len(sources) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return release.CompareVersions(b, a) })
	return out, nil
}
