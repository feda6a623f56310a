package app

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/driver"
)

// securityOptions are the flags that confine what a CSI request can make
// the plugin do: where it mounts, and which managers it sends its token to.
// Options embeds them.
type securityOptions struct {
	// KubeletDir is kubelet's root directory: every staging, target and
	// volume path must be below it (default /var/lib/kubelet).
	KubeletDir string
	// AllowedManagers are managers, besides --manager, that a volume's
	// `manager` attribute may name; the plugin sends its token to them.
	AllowedManagers []string
}

// addSecurityFlags registers the security flags on fs.
func (o *Options) addSecurityFlags(fs *pflag.FlagSet) {
	if o.KubeletDir == "" {
		o.KubeletDir = driver.DefaultKubeletDir
	}
	fs.StringVar(&o.KubeletDir, "kubelet-dir", o.KubeletDir,
		"kubelet's root directory (its --root-dir): staging, target and volume paths of CSI requests must be below it")
	fs.StringArrayVar(&o.AllowedManagers, "allowed-manager", o.AllowedManagers,
		"a manager URL, besides --manager, that a volume's `manager` attribute may name (repeatable); the plugin sends its token there. Others are refused")
}

// validateSecurity checks the security flags.
func (o *Options) validateSecurity() error {
	if o.KubeletDir == "" {
		o.KubeletDir = driver.DefaultKubeletDir
	}
	if !filepath.IsAbs(o.KubeletDir) {
		return fmt.Errorf("--kubelet-dir %q: must be an absolute path", o.KubeletDir)
	}
	for _, m := range o.AllowedManagers {
		if _, err := driver.ManagerOrigin(m); err != nil {
			return fmt.Errorf("--allowed-manager %q: %w", m, err)
		}
	}
	return nil
}
