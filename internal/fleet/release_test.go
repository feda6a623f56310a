//go:build linux

package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMixedRelease: the same seed gives the same files, another seed other
// content; the sizes add up to the total asked for, with one large file
// and many small ones.
func TestMixedRelease(t *testing.T) {
	const total = 8 << 20
	a, b, c := MixedRelease(1, total), MixedRelease(1, total), MixedRelease(2, total)
	if a.Bytes != total {
		t.Errorf("bytes %d, want %d", a.Bytes, total)
	}
	if len(a.Files) != len(b.Files) || a.Files[0].SHA256 != b.Files[0].SHA256 || a.Files[len(a.Files)-1].SHA256 != b.Files[len(b.Files)-1].SHA256 {
		t.Error("the same seed gave different files")
	}
	if a.Files[0].SHA256 == c.Files[0].SHA256 {
		t.Error("seeds 1 and 2 gave the same large file")
	}
	if a.Files[0].Size != total/2 || len(a.Files) < 20 {
		t.Errorf("want one file of half the total and many small ones, got %d files, the first %d bytes", len(a.Files), a.Files[0].Size)
	}
}

// TestVerifyStore: a store equal to the release passes; a changed byte, a
// missing file and an extra file are each named.
func TestVerifyStore(t *testing.T) {
	r := MixedRelease(3, 1<<20)
	write := func(t *testing.T) string {
		dir := t.TempDir()
		for _, f := range r.Files {
			path := filepath.Join(dir, f.Name)
			if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, f.Content(), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	big := r.Files[0].Name
	cases := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   string // "" for no error
	}{
		{"identical", func(*testing.T, string) {}, ""},
		{"a byte changed", func(t *testing.T, dir string) {
			raw, err := os.ReadFile(filepath.Join(dir, big))
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)/2] ^= 1
			if err := os.WriteFile(filepath.Join(dir, big), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}, big + ": sha256"},
		{"a file missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, big)); err != nil {
				t.Fatal(err)
			}
		}, "1 files missing, first " + big},
		{"an extra file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "stray: not in the release"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := write(t)
			tc.change(t, dir)
			err := verifyStore(dir, r)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("verifyStore: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("verifyStore: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
