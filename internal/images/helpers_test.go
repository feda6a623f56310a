package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pauseBin is hack/images/pause cross-built by CrossBuild once per test
// binary: a real, small static executable for the images under test.
var pauseBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "images-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := CrossBuild(context.Background(), "../..", dir, "v0.0.0-test", "./hack/images/pause"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pauseBin = filepath.Join(dir, "pause")
	return m.Run()
}

// standIn writes a small file standing for the binary name: the images'
// structure does not depend on what the binaries are, and distinct
// contents show each landed at its own path.
func standIn(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("stand-in for "+name+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// smallInputs are Inputs made of stand-ins plus the host's CA bundle and
// busybox, which the tests need anyway.
func smallInputs(t *testing.T) (Inputs, SupportInputs) {
	t.Helper()
	requireBusybox(t)
	dir := t.TempDir()
	in := Inputs{
		Tag: "v0.0.0-test", Version: "v0.0.0-test+abc",
		Manager: standIn(t, dir, "hydra-manager"),
		CLI:     standIn(t, dir, "hydra"),
		CSI:     standIn(t, dir, "hydra-csi"),
		CACerts: DefaultCACerts, Busybox: DefaultBusybox,
	}
	sup := SupportInputs{
		Pause: pauseBin, Busybox: DefaultBusybox, CACerts: DefaultCACerts,
		Provisioner: standIn(t, dir, "csi-provisioner"),
	}
	return in, sup
}

// requireBusybox fails the test, naming the apt command, without the host
// busybox the node and busybox images copy.
func requireBusybox(t *testing.T) {
	t.Helper()
	if err := CheckBusybox(DefaultBusybox); err != nil {
		t.Fatal(err)
	}
}

// writeAll writes every spec into a new temp dir.
func writeAll(t *testing.T, specs []Spec) []Result {
	t.Helper()
	dir := t.TempDir()
	var results []Result
	for _, s := range specs {
		r, err := Write(dir, s)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	return results
}

// allSpecs returns the six images' specs made of small inputs.
func allSpecs(t *testing.T) []Spec {
	t.Helper()
	in, sup := smallInputs(t)
	specs, err := Hydra(in)
	if err != nil {
		t.Fatal(err)
	}
	support, err := Support(sup)
	if err != nil {
		t.Fatal(err)
	}
	return append(specs, support...)
}

// fsEntry is one file of an image's flattened root file system.
type fsEntry struct {
	hdr  *tar.Header
	data []byte
}

// rootFS reads an image's flattened file system, keyed by absolute path.
func rootFS(t *testing.T, img v1.Image) map[string]fsEntry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]fsEntry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Clean("/"+hdr.Name)] = fsEntry{hdr: hdr, data: data}
	}
}

// loadImage reads back a written tarball with go-containerregistry.
func loadImage(t *testing.T, path string) v1.Image {
	t.Helper()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath(%s): %v", path, err)
	}
	return img
}
