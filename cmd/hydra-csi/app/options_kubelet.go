package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hydra-csi/hydra/pkg/driver"
)

// validateHealth checks --health-address is HOST:PORT (HOST may be empty).
func (o *Options) validateHealth() error {
	if o.HealthAddress == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(o.HealthAddress)
	if err != nil {
		return fmt.Errorf("--health-address %q: want HOST:PORT or :PORT: %w", o.HealthAddress, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("--health-address %q: port must be a number from 0 to 65535", o.HealthAddress)
	}
	return nil
}

// validateNoRegistration refuses the registration flags where there is
// no node service: kubelet would register a plugin that cannot mount.
func (o *Options) validateNoRegistration() error {
	if o.KubeletRegistrationDir != "" || o.KubeletCSIEndpoint != "" {
		return fmt.Errorf("--kubelet-registration-dir and --kubelet-csi-endpoint: only in node or all mode, not %s", o.Mode)
	}
	return nil
}

// validateRegistration checks the registry is an absolute directory
// (kubelet creates it; a missing one is made at start) and resolves the
// endpoint kubelet is told to dial: a plain path, as kubelet dials it.
func (o *Options) validateRegistration() error {
	if o.KubeletRegistrationDir == "" {
		if o.KubeletCSIEndpoint != "" {
			return errors.New("--kubelet-csi-endpoint needs --kubelet-registration-dir")
		}
		return nil
	}
	dir := o.KubeletRegistrationDir
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("--kubelet-registration-dir %q: must be an absolute path", dir)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("--kubelet-registration-dir %q: not a directory", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--kubelet-registration-dir: %w", err)
	}
	flag, endpoint := "--kubelet-csi-endpoint", o.KubeletCSIEndpoint
	if endpoint == "" {
		flag, endpoint = "--endpoint", o.Endpoint
	}
	path, err := driver.SocketPath(endpoint)
	if err != nil {
		return fmt.Errorf("%s %q: want an absolute path", flag, endpoint)
	}
	o.kubeletCSIPath = path
	return nil
}
