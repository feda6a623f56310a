package app_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestSecurityFlagsRefused: bad --kubelet-dir and --allowed-manager values
// stop the start with an error naming the flag.
func TestSecurityFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		name, wantFlag string
		args           []string
	}{
		{"kubelet dir relative", "--kubelet-dir", []string{"--kubelet-dir=var/lib/kubelet"}},
		{"allowed manager not http", "--allowed-manager", []string{"--allowed-manager=ftp://mgr:21"}},
		{"allowed manager with user info", "--allowed-manager", []string{"--allowed-manager=http://u:p@mgr:8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := t.TempDir()
			args := append([]string{"--mode=node", "--endpoint=unix://" + filepath.Join(sub, "csi.sock"), "--node-id=node-1",
				"--cache-root=" + filepath.Join(sub, "cache"), "--manager=http://" + testenv.HostPort(testenv.FreePort(t))}, tc.args...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := app.Run(ctx, args, io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantFlag) {
				t.Errorf("Run(%s) = %v, want an error naming %s", strings.Join(tc.args, " "), err, tc.wantFlag)
			}
		})
	}
}

// TestSecurityFlagsDefaults: --kubelet-dir defaults to kubelet's root.
func TestSecurityFlagsDefaults(t *testing.T) {
	opts := app.DefaultOptions()
	fs := pflag.NewFlagSet("hydra-csi", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse([]string{"--allowed-manager=http://a:1", "--allowed-manager=https://b:2"}); err != nil {
		t.Fatal(err)
	}
	if opts.KubeletDir != "/var/lib/kubelet" {
		t.Errorf("--kubelet-dir default %q, want /var/lib/kubelet", opts.KubeletDir)
	}
	if len(opts.AllowedManagers) != 2 {
		t.Errorf("--allowed-manager is repeatable: got %q", opts.AllowedManagers)
	}
}
