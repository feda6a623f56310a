package main

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	tests := []struct {
		name string
		args []string
		want string // part of the error; "" for none
	}{
		{"defaults", nil, ""},
		{"tag from git describe", []string{"-tag", "v0.1.0-3-gabc123-dirty"}, ""},
		{"bad tag", []string{"-tag", "v1:2"}, `-tag "v1:2" is not a valid image tag`},
		{"empty tag", []string{"-tag", ""}, "is not a valid image tag"},
		{"empty out", []string{"-out", ""}, "-out is empty"},
		{"version with a space", []string{"-version", "v1 x"}, "has spaces or quotes"},
		{"no CA bundle", []string{"-ca-certs", missing}, "apt-get install -y ca-certificates"},
		{"no busybox", []string{"-busybox", missing}, "apt-get install -y busybox-static"},
		{"support without csi-provisioner", []string{"-support", "-tools-dir", missing}, "build it with: hack/tools.sh csi-provisioner"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("images", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
			if err == nil && o.Version != o.Tag {
				t.Errorf("-version defaulted to %q, want the tag %q", o.Version, o.Tag)
			}
		})
	}
}

func TestDefaultToolsDir(t *testing.T) {
	t.Setenv("HYDRA_TOOLS_DIR", "")
	t.Setenv("XDG_CACHE_HOME", "/cache")
	if got := defaultToolsDir(); got != "/cache/hydra/bin" {
		t.Errorf("with XDG_CACHE_HOME: %q, want /cache/hydra/bin (hack/tools.sh's)", got)
	}
	t.Setenv("HYDRA_TOOLS_DIR", "/tools")
	if got := defaultToolsDir(); got != "/tools" {
		t.Errorf("with HYDRA_TOOLS_DIR: %q, want /tools", got)
	}
}
