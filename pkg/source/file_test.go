package source_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// writeTree creates files (path → content) below root; a path ending in
// '/' is an empty directory.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			mustDo(t, os.MkdirAll(full, 0o755))
			continue
		}
		mustDo(t, os.MkdirAll(filepath.Dir(full), 0o755))
		mustDo(t, os.WriteFile(full, []byte(content), 0o644))
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fileURI is the file:// source for dir.
func fileURI(t *testing.T, dir string) release.Source {
	t.Helper()
	src, err := release.ParseSource("file://" + dir + "/")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// wantLocalFile is the manifest entry file:// listing must produce.
func wantLocalFile(path, content string) release.File {
	sum := sha256.Sum256([]byte(content))
	return release.File{
		Path:     path,
		Size:     int64(len(content)),
		ETag:     `"` + hex.EncodeToString(sum[:16]) + `"`,
		Checksum: &release.Checksum{Algorithm: release.ChecksumSHA256, Value: base64.StdEncoding.EncodeToString(sum[:])},
	}
}

// checkManifest compares got with the files in want, sorted by path, and
// validates it as the manager will.
func checkManifest(t *testing.T, got release.Manifest, want []release.File) {
	t.Helper()
	if err := got.Validate(); err != nil {
		t.Errorf("manifest does not validate: %v", err)
	}
	if len(got.Files) != len(want) {
		t.Fatalf("manifest has %d files, want %d:\n%+v", len(got.Files), len(want), got.Files)
	}
	for i, w := range want {
		g := got.Files[i]
		if g.Path != w.Path || g.Size != w.Size || g.ETag != w.ETag || !sameChecksum(g.Checksum, w.Checksum) {
			t.Errorf("file %d = %s, want %s", i, describe(g), describe(w))
		}
	}
}

func sameChecksum(a, b *release.Checksum) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func describe(f release.File) string {
	cs := "no checksum"
	if f.Checksum != nil {
		cs = f.Checksum.Algorithm + ":" + f.Checksum.Value
	}
	return fmt.Sprintf("%s (%d bytes, ETag %s, %s)", f.Path, f.Size, f.ETag, cs)
}

func TestLocalList(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"nested tree", map[string]string{
			"top.txt":               "top",
			"dir/mid.bin":           strings.Repeat("x", 3<<20), // several hash buffers
			"dir/sub/deep/leaf.txt": "leaf",
			"dir/empty-dir/":        "",
		}},
		{"empty files", map[string]string{"empty": "", "dir/also-empty": ""}},
		{"spaces and unicode", map[string]string{
			"with space/file name.txt": "a",
			"ünïcödé/日本語.bin":          "b",
			"emoji 🙂/+plus&amp.txt":    "c",
		}},
		{"path order, not walk order", map[string]string{"a/x": "1", "a-b": "2", "a.c": "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			var want []release.File
			for p, content := range tt.files {
				if !strings.HasSuffix(p, "/") {
					want = append(want, wantLocalFile(p, content))
				}
			}
			slices.SortFunc(want, func(a, b release.File) int { return strings.Compare(a.Path, b.Path) })

			got, err := source.NewLocal(source.Options{Concurrency: 2}).List(t.Context(), fileURI(t, root))
			if err != nil {
				t.Fatal(err)
			}
			checkManifest(t, got, want)
		})
	}
}

func TestLocalListRootSymlink(t *testing.T) {
	// The dataset root may be reached through a link (/data -> /mnt/data);
	// only links inside the tree are refused.
	realDir := t.TempDir()
	writeTree(t, realDir, map[string]string{"a": "1"})
	link := filepath.Join(t.TempDir(), "link")
	mustDo(t, os.Symlink(realDir, link))
	got, err := source.NewLocal(source.Options{}).List(t.Context(), fileURI(t, link))
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, got, []release.File{wantLocalFile("a", "1")})
}

func TestLocalListErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) release.Source
		want  []string // substrings of the error
	}{
		{"symlink to a file", func(t *testing.T, root string) release.Source {
			writeTree(t, root, map[string]string{"real": "x"})
			mustDo(t, os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "alias")))
			return fileURI(t, root)
		}, []string{"alias", "symbolic link"}},
		{"symlink to a directory", func(t *testing.T, root string) release.Source {
			writeTree(t, root, map[string]string{"d/f": "x", "sub/": ""})
			mustDo(t, os.Symlink(filepath.Join(root, "d"), filepath.Join(root, "sub", "d2")))
			return fileURI(t, root)
		}, []string{"d2", "symbolic link"}},
		{"named pipe", func(t *testing.T, root string) release.Source {
			mustDo(t, syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644))
			return fileURI(t, root)
		}, []string{"pipe", "not a regular file"}},
		{"empty directory", func(t *testing.T, root string) release.Source {
			writeTree(t, root, map[string]string{"a/": "", "b/c/": ""})
			return fileURI(t, root)
		}, []string{"no files under directory"}},
		{"missing directory", func(t *testing.T, root string) release.Source {
			return fileURI(t, filepath.Join(root, "nope"))
		}, []string{"no such file or directory"}},
		{"unresolved placeholder", func(t *testing.T, root string) release.Source {
			return fileURI(t, filepath.Join(root, "{VERSION}"))
		}, []string{"{VERSION}", "must be resolved"}},
		{"s3 source", func(*testing.T, string) release.Source {
			return release.Source{Scheme: release.SchemeS3, Bucket: "bucket", Prefix: "p/"}
		}, []string{"s3://bucket/p/", "not a file:// URI"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			src := tt.setup(t, root)
			_, err := source.NewLocal(source.Options{}).List(t.Context(), src)
			wantError(t, err, append(tt.want, "source: "+src.String()))
		})
	}
}

// wantError fails unless err holds every substring.
func wantError(t *testing.T, err error, subs []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestLocalVersions(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		links   map[string]string // link → target, relative to the root
		pattern string            // below the root
		want    []string
	}{
		{"timestamps, non-empty real directories only",
			map[string]string{
				"2024-01-10T00-00-00/a":     "x",
				"2023-12-31T23-59-59/a":     "",
				"2024-01-02T00-00-00/sub/b": "x",
				"2025-01-01T00-00-00/sub/":  "", // no files
				"2026-01-01T00-00-00":       "a file, not a directory",
				".hidden/a":                 "x", // not a valid version
			},
			map[string]string{"latest": "2024-01-10T00-00-00"},
			"{VERSION}",
			[]string{"2023-12-31T23-59-59", "2024-01-02T00-00-00", "2024-01-10T00-00-00"}},
		{"natural order",
			map[string]string{"v9/a": "x", "v10/a": "x", "v1/a": "x"}, nil,
			"{VERSION}", []string{"v1", "v9", "v10"}},
		{"text around the placeholder",
			map[string]string{"model-v2.d/a": "x", "model-v10.d/a": "x", "other-v11.d/a": "x", "model-v12.x/a": "x"}, nil,
			"model-{VERSION}.d", []string{"v2", "v10"}},
		{"path after the placeholder",
			map[string]string{"v1/shards/a": "x", "v2/meta": "x", "v3/shards": "a file", "v4/shards/": ""}, nil,
			"{VERSION}/shards", []string{"v1"}},
		{"nothing", map[string]string{"x/": ""}, nil, "{VERSION}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tt.files)
			for link, target := range tt.links {
				mustDo(t, os.Symlink(filepath.Join(root, target), filepath.Join(root, link)))
			}
			got, err := source.NewLocal(source.Options{}).Versions(t.Context(), fileURI(t, filepath.Join(root, tt.pattern)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Versions() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLocalVersionsErrors(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		name string
		src  release.Source
		want []string
	}{
		{"missing directory", fileURI(t, filepath.Join(root, "nope", "{VERSION}")), []string{"nope", "read versions"}},
		{"no placeholder", fileURI(t, root), []string{"{VERSION} placeholder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := source.NewLocal(source.Options{}).Versions(t.Context(), tt.src)
			wantError(t, err, append(tt.want, "source: "+tt.src.String()))
		})
	}
}

func TestResolveVersionLocal(t *testing.T) {
	tests := []struct {
		name    string
		a, b    []string // versions present in datasets a and b
		want    string
		wantErr func(a, b string) []string // substrings, given the URIs
	}{
		{name: "newest common", a: []string{"v1", "v2", "v3"}, b: []string{"v2", "v1"}, want: "v2"},
		{name: "timestamps", a: []string{"2023-12-31T23-59-59", "2024-02-01T00-00-00", "2024-01-02T00-00-00"},
			b: []string{"2024-01-02T00-00-00", "2023-12-31T23-59-59"}, want: "2024-01-02T00-00-00"},
		{name: "natural, not lexical", a: []string{"v9", "v10", "v100"}, b: []string{"v9", "v10"}, want: "v10"},
		{name: "no common version", a: []string{"v1", "v2"}, b: []string{"v3"},
			wantErr: func(a, b string) []string {
				return []string{"no version is present under every dataset", a + " has 2 (newest v2)", b + " has 1 (newest v3)"}
			}},
		{name: "dataset without versions", a: []string{"v1"}, b: nil,
			wantErr: func(_, b string) []string { return []string{b + ": no versions found"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs := make([]release.Source, 2)
			for i, versions := range [][]string{tt.a, tt.b} {
				root := t.TempDir()
				for _, v := range versions {
					writeTree(t, root, map[string]string{v + "/data/file": v})
				}
				srcs[i] = fileURI(t, filepath.Join(root, "{VERSION}", "data"))
			}
			got, err := source.ResolveVersion(t.Context(), source.NewMux(source.Options{}), srcs)
			if tt.wantErr != nil {
				wantError(t, err, tt.wantErr(srcs[0].String(), srcs[1].String()))
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveVersion() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestResolveVersionInputs(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"v1/a": "x"})
	plain := fileURI(t, root)
	tests := []struct {
		name string
		srcs []release.Source
		want []string
	}{
		{"no datasets", nil, []string{"no datasets"}},
		{"no placeholder", []release.Source{fileURI(t, filepath.Join(root, "{VERSION}")), plain},
			[]string{plain.String(), "no {VERSION} placeholder"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := source.ResolveVersion(t.Context(), source.NewLocal(source.Options{}), tt.srcs)
			wantError(t, err, append(tt.want, "source: "))
		})
	}
}
