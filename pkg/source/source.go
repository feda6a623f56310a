package source

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Lister reads what a dataset location holds. Each backend implements it;
// later capabilities (ranged downloads) get interfaces of their own, so a
// caller asks only for what it uses.
type Lister interface {
	// List returns the manifest of every file under src, sorted by path.
	// src must not hold a {VERSION} placeholder any more.
	List(ctx context.Context, src release.Source) (release.Manifest, error)
	// Versions returns the versions that can stand in for src's {VERSION}
	// placeholder and leave a non-empty location, oldest first (per
	// release.CompareVersions).
	Versions(ctx context.Context, src release.Source) ([]string, error)
}

// Options configure the backends. The zero value uses the standard AWS
// environment and sensible limits.
type Options struct {
	// Endpoint overrides the S3 endpoint URL. When empty, the standard AWS
	// settings apply (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, endpoint_url in
	// the config file). Any custom endpoint switches to path-style addressing.
	Endpoint string
	// Region overrides the AWS region; with none configured anywhere,
	// us-east-1 is used (S3-compatible stores such as MinIO ignore it).
	Region string
	// Concurrency bounds the parallel work of one List: HeadObject calls for
	// S3, file hashes for file://. Zero picks a default per backend.
	Concurrency int
}

// NewLister returns the Lister for one URI scheme (release.SchemeS3 or
// release.SchemeFile).
func NewLister(ctx context.Context, scheme string, opts Options) (Lister, error) {
	switch scheme {
	case release.SchemeS3:
		return NewS3(ctx, opts)
	case release.SchemeFile:
		return NewLocal(opts), nil
	}
	return nil, fmt.Errorf("source: unknown scheme %q (want %s or %s)", scheme, release.SchemeS3, release.SchemeFile)
}

// Mux is a Lister for every scheme: it hands each call to the backend of the
// source's scheme. Backends are built on first use, so that file:// work
// never depends on the AWS environment being configured.
type Mux struct {
	opts    Options
	mu      sync.Mutex
	listers map[string]Lister
}

// NewMux returns a Mux whose backends are built with opts.
func NewMux(opts Options) *Mux {
	return &Mux{opts: opts, listers: make(map[string]Lister)}
}

// List implements Lister.
func (m *Mux) List(ctx context.Context, src release.Source) (release.Manifest, error) {
	l, err := m.lister(ctx, src.Scheme)
	if err != nil {
		return release.Manifest{}, err
	}
	return l.List(ctx, src)
}

// Versions implements Lister.
func (m *Mux) Versions(ctx context.Context, src release.Source) ([]string, error) {
	l, err := m.lister(ctx, src.Scheme)
	if err != nil {
		return nil, err
	}
	return l.Versions(ctx, src)
}

func (m *Mux) lister(ctx context.Context, scheme string) (Lister, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.listers[scheme]; ok {
		return l, nil
	}
	l, err := NewLister(ctx, scheme, m.opts)
	if err != nil {
		return nil, err
	}
	m.listers[scheme] = l
	return l, nil
}

// ErrEmpty means a source holds nothing to publish: an empty prefix or
// directory (often an upload that has not started).
var ErrEmpty = errors.New("empty")

// ResolveVersion implements `--version auto`: the newest version (per
// release.CompareVersions) that is present under every source. A release's
// datasets belong together, so a version that only some datasets have is
// not a candidate, however new.
func ResolveVersion(ctx context.Context, l Lister, sources []release.Source) (string, error) {
	if len(sources) == 0 {
		return "", fmt.Errorf("source: resolve version: no datasets given")
	}
	perSource := make([][]string, len(sources))
	for i, src := range sources {
		if !src.HasPlaceholder() {
			return "", fmt.Errorf("source: resolve version: %s has no %s placeholder to resolve",
				src, release.VersionPlaceholder)
		}
		versions, err := l.Versions(ctx, src)
		if err != nil {
			return "", err
		}
		if len(versions) == 0 {
			return "", fmt.Errorf("source: resolve version: %s: no versions found", src)
		}
		perSource[i] = versions
	}
	common := intersect(perSource)
	if len(common) == 0 {
		return "", noCommonVersion(sources, perSource)
	}
	return slices.MaxFunc(common, release.CompareVersions), nil
}

// intersect returns the versions present in every list.
func intersect(lists [][]string) []string {
	count := make(map[string]int)
	for _, list := range lists {
		// Versions() lists are duplicate-free, but a set per list keeps the
		// count honest whatever a Lister returns.
		seen := make(map[string]bool, len(list))
		for _, v := range list {
			if !seen[v] {
				seen[v] = true
				count[v]++
			}
		}
	}
	var common []string
	for v, n := range count {
		if n == len(lists) {
			common = append(common, v)
		}
	}
	return common
}

func noCommonVersion(sources []release.Source, perSource [][]string) error {
	parts := make([]string, len(sources))
	for i, src := range sources {
		vs := perSource[i]
		parts[i] = fmt.Sprintf("%s has %d (newest %s)", src, len(vs), slices.MaxFunc(vs, release.CompareVersions))
	}
	return fmt.Errorf("source: resolve version: no version is present under every dataset: %s",
		strings.Join(parts, "; "))
}

// versionIn extracts the version from one path segment below the
// placeholder's directory, when the segment carries the text that surrounds
// the placeholder ("model-{VERSION}.d" → before "model-", after ".d") and the
// rest is a valid version.
func versionIn(segment, before, after string) (string, bool) {
	if len(segment) <= len(before)+len(after) ||
		!strings.HasPrefix(segment, before) || !strings.HasSuffix(segment, after) {
		return "", false
	}
	v := segment[len(before) : len(segment)-len(after)]
	if release.ValidateVersion(v) != nil {
		return "", false
	}
	return v, true
}

// manifestOf sorts files by path, the order S3 lists in, and validates the
// tree they form: S3 can hold both "a" and "a/b", which no directory can.
func manifestOf(src release.Source, files []release.File) (release.Manifest, error) {
	slices.SortFunc(files, func(a, b release.File) int { return strings.Compare(a.Path, b.Path) })
	m := release.Manifest{Files: files}
	if err := m.Validate(); err != nil {
		return release.Manifest{}, fmt.Errorf("source: %s: listing is not a valid manifest: %w", src, err)
	}
	return m, nil
}

// unresolved refuses a source that still holds {VERSION}: listing it would
// look for a directory literally named "{VERSION}".
func unresolved(src release.Source) error {
	if src.HasPlaceholder() {
		return fmt.Errorf("source: %s: the %s placeholder must be resolved before listing",
			src, release.VersionPlaceholder)
	}
	return nil
}

// forEach calls fn for 0..n-1 with at most limit calls in flight. It stops
// starting new calls after the first error and returns that error; fn gets a
// context that is cancelled then, so calls in flight can stop early too.
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, max(limit, 1))
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			if first != nil {
				return first
			}
			return ctx.Err() // the caller's context ended before all started
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	return first
}
