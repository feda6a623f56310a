package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// wantFile is a file an image must hold.
type wantFile struct {
	path     string
	mode     fs.FileMode // type and permission bits as the runtime sees them
	owner    Owner
	data     []byte // exact contents, when set
	contains string // a line the contents must hold, when set
	link     string // symlink target, for symlinks
}

func hostFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// baseFiles are the distroless-like files of every image but pause and busybox.
func baseFiles(t *testing.T) []wantFile {
	return []wantFile{
		{path: "/etc/passwd", mode: 0o644, contains: "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"},
		{path: "/etc/group", mode: 0o644, contains: "nonroot:x:65532:"},
		{path: "/etc/nsswitch.conf", mode: 0o644, contains: "hosts: files dns"},
		{path: "/etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: hostFile(t, DefaultCACerts)},
		{path: "/tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{path: "/root", mode: fs.ModeDir | 0o700},
		{path: "/home/nonroot", mode: fs.ModeDir | 0o700, owner: NonRoot},
	}
}

func bin(p, standIn string) wantFile {
	return wantFile{path: p, mode: 0o755, data: []byte("stand-in for " + standIn + "\n")}
}

func link(p string) wantFile {
	return wantFile{path: p, mode: fs.ModeSymlink | 0o777, link: "busybox"}
}

// TestImages writes the six images from small inputs, reads each tarball
// back with go-containerregistry and checks its tag, config and files.
func TestImages(t *testing.T) {
	results := writeAll(t, allSpecs(t))
	busybox := wantFile{path: "/bin/busybox", mode: 0o755, data: hostFile(t, DefaultBusybox)}
	labels := func(title string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":   title,
			"org.opencontainers.image.version": "v0.0.0-test+abc",
			"org.opencontainers.image.source":  "https://github.com/hydra-csi/hydra",
		}
	}
	certs := []string{BasePath, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	tests := []struct {
		file, ref string
		config    v1.Config
		files     []wantFile
	}{{
		file: "hydra-manager.tar", ref: "ghcr.io/hydra-csi/hydra-manager:v0.0.0-test",
		config: v1.Config{User: "65532:65532", WorkingDir: "/home/nonroot", Env: certs,
			Entrypoint: []string{"/usr/local/bin/hydra-manager"}, Labels: labels("hydra-manager")},
		files: append(baseFiles(t), bin("/usr/local/bin/hydra-manager", "hydra-manager"), bin("/usr/local/bin/hydra", "hydra")),
	}, {
		file: "hydra-csi.tar", ref: "ghcr.io/hydra-csi/hydra-csi:v0.0.0-test",
		config: v1.Config{User: "65532:65532", WorkingDir: "/home/nonroot", Env: certs,
			Entrypoint: []string{"/usr/local/bin/hydra-csi"}, Labels: labels("hydra-csi")},
		files: append(baseFiles(t), bin("/usr/local/bin/hydra-csi", "hydra-csi")),
	}, {
		file: "hydra-csi-node.tar", ref: "ghcr.io/hydra-csi/hydra-csi-node:v0.0.0-test",
		config: v1.Config{User: "0:0", WorkingDir: "/", Env: certs,
			Entrypoint: []string{"/usr/local/bin/hydra-csi"}, Labels: labels("hydra-csi-node")},
		files: append(baseFiles(t), bin("/usr/local/bin/hydra-csi", "hydra-csi"), busybox,
			link("/bin/mount"), link("/bin/umount"), link("/bin/sh")),
	}, {
		file: "pause.tar", ref: "localhost/pause:e2e",
		config: v1.Config{User: "65535:65535", Env: []string{BasePath}, Entrypoint: []string{"/pause"}},
		files:  []wantFile{{path: "/pause", mode: 0o755, data: hostFile(t, pauseBin)}},
	}, {
		file: "busybox.tar", ref: "localhost/busybox:e2e",
		config: v1.Config{User: "0:0", WorkingDir: "/", Env: []string{BasePath}, Cmd: []string{"sh"}},
		files: []wantFile{busybox, link("/bin/sh"), link("/bin/ls"), link("/bin/mount"), link("/bin/[["),
			{path: "/etc/passwd", mode: 0o644, contains: "root:x:0:0:root:/root:/sbin/nologin"},
			{path: "/tmp", mode: fs.ModeDir | fs.ModeSticky | 0o777}},
	}, {
		file: "csi-provisioner.tar", ref: "registry.k8s.io/sig-storage/csi-provisioner:v6.3.0",
		config: v1.Config{User: "65532:65532", WorkingDir: "/", Env: certs, Entrypoint: []string{"/csi-provisioner"}},
		files:  append(baseFiles(t), bin("/csi-provisioner", "csi-provisioner")),
	}}
	if len(results) != len(tests) {
		t.Fatalf("wrote %d images, want %d", len(results), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r := results[i]
			if path.Base(r.Path) != tt.file || r.Ref != tt.ref {
				t.Fatalf("image %d is %s tagged %s, want %s tagged %s", i, r.Path, r.Ref, tt.file, tt.ref)
			}
			if got := repoTags(t, r.Path); !slices.Equal(got, []string{tt.ref}) {
				t.Errorf("RepoTags = %q, want [%q]", got, tt.ref)
			}
			img := loadImage(t, r.Path)
			checkConfig(t, img, tt.config)
			checkDigests(t, img, r)
			files := rootFS(t, img)
			for _, w := range tt.files {
				checkFile(t, files, w)
			}
		})
	}
}

func repoTags(t *testing.T, p string) []string {
	t.Helper()
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
	if err != nil || len(m) != 1 {
		t.Fatalf("manifest.json of %s: %v (%d entries, want 1)", p, err, len(m))
	}
	return m[0].RepoTags
}

func checkConfig(t *testing.T, img v1.Image, want v1.Config) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || cf.Created.Unix() != 0 {
		t.Errorf("platform %s/%s created %v, want linux/amd64 created at the Unix epoch", cf.OS, cf.Architecture, cf.Created)
	}
	got := cf.Config
	if got.User != want.User || got.WorkingDir != want.WorkingDir ||
		!slices.Equal(got.Entrypoint, want.Entrypoint) || !slices.Equal(got.Cmd, want.Cmd) ||
		!slices.Equal(got.Env, want.Env) || !maps.Equal(got.Labels, want.Labels) {
		t.Errorf("config:\n got user=%q wd=%q entrypoint=%q cmd=%q env=%q labels=%v\nwant user=%q wd=%q entrypoint=%q cmd=%q env=%q labels=%v",
			got.User, got.WorkingDir, got.Entrypoint, got.Cmd, got.Env, got.Labels,
			want.User, want.WorkingDir, want.Entrypoint, want.Cmd, want.Env, want.Labels)
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		t.Errorf("%d layers, want 1", len(cf.RootFS.DiffIDs))
	}
}

// checkDigests compares what Write reported with what the tarball holds.
func checkDigests(t *testing.T, img v1.Image, r Result) {
	t.Helper()
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if digest != r.Digest || id != r.ID {
		t.Errorf("read back digest %s id %s, Write reported %s and %s", digest, id, r.Digest, r.ID)
	}
}

func checkFile(t *testing.T, files map[string]fsEntry, w wantFile) {
	t.Helper()
	f, ok := files[w.path]
	if !ok {
		t.Errorf("%s: missing", w.path)
		return
	}
	h := f.hdr
	if mode := h.FileInfo().Mode(); mode != w.mode {
		t.Errorf("%s: mode %v, want %v", w.path, mode, w.mode)
	}
	if h.Uid != w.owner.UID || h.Gid != w.owner.GID {
		t.Errorf("%s: owner %d:%d, want %d:%d", w.path, h.Uid, h.Gid, w.owner.UID, w.owner.GID)
	}
	if w.data != nil && !bytes.Equal(f.data, w.data) {
		t.Errorf("%s: %d bytes that differ from the %d expected", w.path, len(f.data), len(w.data))
	}
	if w.contains != "" && !slices.Contains(strings.Split(string(f.data), "\n"), w.contains) {
		t.Errorf("%s has no line %q:\n%s", w.path, w.contains, f.data)
	}
	if h.Linkname != w.link {
		t.Errorf("%s: link %q, want %q", w.path, h.Linkname, w.link)
	}
}

// TestBusyboxAppletLinks checks the busybox image links every applet the
// host's busybox lists, so test pods find any command they run.
func TestBusyboxAppletLinks(t *testing.T) {
	_, sup := smallInputs(t)
	applets, err := Applets(sup.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := Support(sup)
	if err != nil {
		t.Fatal(err)
	}
	files := rootFS(t, loadImage(t, writeAll(t, specs[1:2])[0].Path))
	for _, a := range applets {
		if f, ok := files["/bin/"+a]; !ok || f.hdr.Linkname != "busybox" {
			t.Errorf("/bin/%s is not a link to busybox", a)
		}
	}
}

// TestDeterministic builds every image twice from equal inputs: the
// tarballs must be byte for byte the same; and once from a changed
// binary, which must change that image's digest only.
func TestDeterministic(t *testing.T) {
	first, second := writeAll(t, allSpecs(t)), writeAll(t, allSpecs(t))
	for i := range first {
		a, b := first[i], second[i]
		if a.Digest != b.Digest || a.ID != b.ID || fileSum(t, a.Path) != fileSum(t, b.Path) {
			t.Errorf("%s: two builds differ: %s/%s vs %s/%s", path.Base(a.Path), a.Digest, a.ID, b.Digest, b.ID)
		}
	}
	in, _ := smallInputs(t)
	if err := os.WriteFile(in.CSI, []byte("another hydra-csi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	specs, err := Hydra(in)
	if err != nil {
		t.Fatal(err)
	}
	changed := writeAll(t, specs)
	for i, r := range changed {
		if csi := strings.HasPrefix(path.Base(r.Path), "hydra-csi"); (r.Digest != first[i].Digest) != csi {
			t.Errorf("%s: digest %s, first build %s: changing hydra-csi should change only the hydra-csi images", path.Base(r.Path), r.Digest, first[i].Digest)
		}
	}
}

func fileSum(t *testing.T, p string) string {
	sum := sha256.Sum256(hostFile(t, p))
	return hex.EncodeToString(sum[:])
}

// TestDockerArchiveShape reads each tarball as ctr's importer does: a
// manifest.json with exactly Config, RepoTags and Layers, naming members
// that exist; a config whose rootfs.diff_ids are the layers' uncompressed
// digests; and a layer tar that is canonical (sorted, parents first, fixed
// mtimes, numeric owners only).
func TestDockerArchiveShape(t *testing.T) {
	for _, r := range writeAll(t, allSpecs(t)) {
		t.Run(path.Base(r.Path), func(t *testing.T) {
			members := tarMembers(t, r.Path)
			var manifest []map[string]json.RawMessage
			if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
				t.Fatalf("manifest.json: %v, %d entries: %s", err, len(manifest), members["manifest.json"])
			}
			if keys := slices.Sorted(maps.Keys(manifest[0])); !slices.Equal(keys, []string{"Config", "Layers", "RepoTags"}) {
				t.Errorf("manifest.json keys %q, want Config, Layers, RepoTags", keys)
			}
			var entries []struct {
				Config   string
				RepoTags []string
				Layers   []string
			}
			if err := json.Unmarshal(members["manifest.json"], &entries); err != nil {
				t.Fatal(err)
			}
			entry := entries[0]
			if !slices.Equal(entry.RepoTags, []string{r.Ref}) {
				t.Errorf("RepoTags %q, want [%q]", entry.RepoTags, r.Ref)
			}
			checkConfigMember(t, members, entry.Config, entry.Layers)
		})
	}
}

func checkConfigMember(t *testing.T, members map[string][]byte, config string, layers []string) {
	t.Helper()
	raw, ok := members[config]
	if !ok {
		t.Fatalf("Config %q is not in the archive", config)
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != config {
		t.Errorf("Config member %q does not hash to its name", config)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		t.Fatal(err)
	}
	if cf.RootFS.Type != "layers" || len(cf.RootFS.DiffIDs) != len(layers) || len(layers) != 1 {
		t.Fatalf("rootfs %+v for layers %q: want one layer", cf.RootFS, layers)
	}
	gz, ok := members[layers[0]]
	if !ok {
		t.Fatalf("layer %q is not in the archive", layers[0])
	}
	uncompressed := gunzip(t, gz)
	if sum := sha256.Sum256(uncompressed); cf.RootFS.DiffIDs[0].Hex != hex.EncodeToString(sum[:]) {
		t.Errorf("diff_id %s is not the layer's uncompressed digest", cf.RootFS.DiffIDs[0])
	}
	checkCanonical(t, uncompressed)
}

func checkCanonical(t *testing.T, layer []byte) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(layer))
	seen := map[string]bool{"": true}
	prev := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name <= prev && prev != "" {
			t.Errorf("%q after %q: entries are not sorted", name, prev)
		}
		if parent := path.Dir(name); !seen[strings.TrimPrefix(parent, ".")] {
			t.Errorf("%q comes before its directory %q", name, parent)
		}
		if h.ModTime.Unix() != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%q: mtime %v owner names %q:%q, want the Unix epoch and none", name, h.ModTime, h.Uname, h.Gname)
		}
		seen[name], prev = true, name
	}
}

func gunzip(t *testing.T, gz []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tarMembers(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	members := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return members
		}
		if err != nil {
			t.Fatal(err)
		}
		if members[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}
