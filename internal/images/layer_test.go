package images

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestLayerPathsAndParents(t *testing.T) {
	l := NewLayer()
	l.File("usr/local/bin/x", 0o755, Root, []byte("x"))
	l.Symlink("/bin/../bin/sh", "busybox")
	l.Dir("/home/nonroot/", 0o700, NonRoot)
	l.File("/etc/passwd", 0o600, Root, []byte("old"))
	l.File("/etc/passwd", 0o644, Root, []byte("new")) // the last write wins
	want := []string{"/bin", "/bin/sh", "/etc", "/etc/passwd", "/home", "/home/nonroot",
		"/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/x"}
	if got := l.Paths(); !slices.Equal(got, want) {
		t.Fatalf("Paths() = %q\nwant %q", got, want)
	}
	raw, err := l.Tar()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name)
		if h.Name == "etc/passwd" && h.Mode != 0o644 {
			t.Errorf("etc/passwd mode %o, want the last write's 0644", h.Mode)
		}
		if h.Name == "usr/" && (h.Mode != 0o755 || h.Uid != 0) {
			t.Errorf("implicit parent usr/: mode %o uid %d, want 0755 root", h.Mode, h.Uid)
		}
	}
	if !slices.Equal(names[:3], []string{"bin/", "bin/sh", "etc/"}) {
		t.Errorf("tar names start %q: want relative names, directories with a slash", names[:3])
	}
	again, err := l.Tar()
	if err != nil || !bytes.Equal(raw, again) {
		t.Errorf("two Tar() calls differ (%v)", err)
	}
}

func TestCheckBusybox(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dynamic, err := dynamicELF("/bin/ls") // any dynamically linked host binary
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"static", pauseBin, ""},
		{"missing", filepath.Join(dir, "none"), "is missing; install it with: apt-get install -y busybox-static"},
		{"not ELF", text, "is not an ELF binary"},
		{"dynamic", dynamic, "is dynamically linked; install the static one with: apt-get install -y busybox-static"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBusybox(tt.path)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("CheckBusybox(%s) = %v, want %q", tt.path, err, tt.want)
			}
		})
	}
}

// dynamicELF returns p after checking it has an ELF interpreter.
func dynamicELF(p string) (string, error) {
	f, err := elf.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return p, nil
		}
	}
	return "", os.ErrInvalid
}

func TestBaseNeedsTheCABundle(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.crt")
	if _, err := Base(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Base(%s) = %v, want an error naming it", missing, err)
	}
}

func TestSupportNeedsTheProvisioner(t *testing.T) {
	_, sup := smallInputs(t)
	sup.Provisioner = filepath.Join(t.TempDir(), "csi-provisioner")
	if _, err := Support(sup); err == nil || !strings.Contains(err.Error(), "hack/tools.sh csi-provisioner") {
		t.Errorf("Support without csi-provisioner = %v, want the command that builds it", err)
	}
}
