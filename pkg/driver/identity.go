package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/hydra-csi/hydra/pkg/version"
)

// GetPluginInfo names the driver and its version.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: d.opts.Name, VendorVersion: version.Version}, nil
}

// GetPluginCapabilities advertises the controller service when served.
// There is no topology constraint: any node can serve any channel.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	resp := &csi.GetPluginCapabilitiesResponse{}
	if d.opts.Controller {
		resp.Capabilities = append(resp.Capabilities, &csi.PluginCapability{
			Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{
				Type: csi.PluginCapability_Service_CONTROLLER_SERVICE,
			}},
		})
	}
	return resp, nil
}

// Probe checks that the node's store is usable: its root exists and takes
// a write. The controller has nothing local to check; the manager being
// down makes CreateVolume Unavailable, not the plugin unready.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	if d.opts.Node {
		if err := probeDir(d.opts.Cache.Layout().Root); err != nil {
			return nil, err
		}
	}
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// probeDir stats dir, then writes and removes a probe file in it.
func probeDir(dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("driver: probe: cache root: %w", err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("driver: probe: cache root %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_, err = f.WriteString("probe")
	err = errors.Join(err, f.Close(), os.Remove(filepath.Clean(name)))
	if err != nil {
		return fmt.Errorf("driver: probe: cache root %s: %w", dir, err)
	}
	return nil
}
