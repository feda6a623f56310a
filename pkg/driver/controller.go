package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// volumeIDPrefix starts every volume ID CreateVolume makes:
// hydra-<channel>-<16 hex of sha256(name)>. The channel is in the ID so
// that ValidateVolumeCapabilities, which gets no context, can check it
// with the manager; the controller keeps no state of its own.
const volumeIDPrefix = "hydra-"

// volumeID is deterministic: a retried CreateVolume of one name (the CSI
// spec requires idempotency by name) returns the same ID.
func volumeID(channel, name string) string {
	sum := sha256.Sum256([]byte(name))
	return volumeIDPrefix + channel + "-" + hex.EncodeToString(sum[:8])
}

// channelOfVolume parses a volume ID made by volumeID.
func channelOfVolume(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, volumeIDPrefix)
	i := strings.LastIndexByte(rest, '-')
	if !ok || i < 0 || len(rest)-i-1 != 16 {
		return "", false
	}
	if _, err := hex.DecodeString(rest[i+1:]); err != nil {
		return "", false
	}
	ch := rest[:i]
	return ch, release.ValidateChannelName(ch) == nil
}

// ControllerGetCapabilities advertises create and delete only. There is nothing to
// attach (attachRequired: false), list, snapshot or expand.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{
			Type: csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		}},
	}}}, nil
}

// CreateVolume resolves the volume's channel (docs/design.md §3), checks it with
// the manager and returns the resolved attributes as the volume context,
// so the node never needs the PVC. Nothing is allocated: the data lands on
// a node when a pod there stages the volume.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name", "", "is required")
	}
	if err := checkCapabilities("volume_capabilities", req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	if req.GetVolumeContentSource() != nil {
		return nil, invalid("volume_content_source", "", "is not supported: a hydra volume is filled from its channel")
	}
	attrs, err := parseAttrs("parameters", req.GetParameters(), true)
	if err != nil {
		return nil, err
	}
	if err := d.managers.check("parameters."+AttrManager, attrs.Manager); err != nil {
		return nil, err
	}
	if attrs.Channel == "" {
		if attrs, err = d.channelFromPVC(ctx, req.GetParameters(), attrs); err != nil {
			return nil, err
		}
	}
	id := volumeID(attrs.Channel, req.GetName())
	done, err := d.inflight.acquire(id)
	if err != nil {
		return nil, err
	}
	defer done()
	size, err := d.releaseSize(ctx, attrs)
	if err != nil {
		return nil, err
	}
	capacity, err := capacityOf(size, req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Volume created", "volumeID", id, "channel", attrs.Channel, "release", attrs.Version, "medium", attrs.Medium)
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId: id, CapacityBytes: capacity, VolumeContext: attrs.context(),
	}}, nil
}

// releaseSize checks the channel (and the pinned release) with the
// manager and returns the size of the release the volume will serve, 0
// when the channel has no head yet.
func (d *Driver) releaseSize(ctx context.Context, attrs volumeAttrs) (int64, error) {
	cl, err := d.clientFor(attrs.Manager)
	if err != nil {
		return 0, err
	}
	detail, err := cl.GetChannel(ctx, attrs.Channel)
	if client.IsNotFound(err) {
		return 0, fmt.Errorf("driver: channel %q: %w: the manager does not know it", attrs.Channel, errNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("driver: channel %q: %w", attrs.Channel, err)
	}
	want := attrs.Version
	if want == "" {
		want = detail.Channel.Head
	}
	for _, r := range detail.Releases {
		if r.Version == want {
			return r.Bytes, nil
		}
	}
	if attrs.Version != "" {
		return 0, fmt.Errorf("driver: release %s/%s: %w: the channel has no such release", attrs.Channel, attrs.Version, errNotFound)
	}
	return 0, nil
}

// capacityOf reports the data's size as the volume's capacity. A volume
// is its release: it cannot be made bigger, and claiming more would be
// untrue; when the request asks for more than the data holds, capacity is
// reported as 0 ("unknown" in the CSI spec; csi-provisioner then records
// the requested size). A limit below the data's size cannot be met.
func capacityOf(size int64, r *csi.CapacityRange) (int64, error) {
	if limit := r.GetLimitBytes(); limit > 0 && size > limit {
		return 0, fmt.Errorf("driver: capacity_range.limit_bytes %d: %w: the release holds %d bytes", limit, errOutOfRange, size)
	}
	if r.GetRequiredBytes() > size {
		return 0, nil
	}
	return size, nil
}

// DeleteVolume has nothing to free: views go with NodeUnpublish, and each
// node's retention removes releases no view uses. It is idempotent, and
// an ID this driver never made is deleted as well ("succeed when an
// invalid volume id is used").
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume_id", "", "is required")
	}
	done, err := d.inflight.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer done()
	klog.FromContext(ctx).V(2).Info("Volume deleted")
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms mount access in any mode (publishes
// are read-only anyway) and refuses to confirm block access.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, invalid("volume_id", "", "is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, invalid("volume_capabilities", "", "is required")
	}
	attrs, err := parseAttrs("volume_context", req.GetVolumeContext(), true)
	if err != nil {
		return nil, err
	}
	channel, ok := channelOfVolume(req.GetVolumeId())
	if !ok {
		return nil, fmt.Errorf("driver: volume %q: %w: not an ID this driver made", req.GetVolumeId(), errNotFound)
	}
	attrs.Channel = channel
	if _, err := d.releaseSize(ctx, attrs); err != nil {
		return nil, err
	}
	for i, c := range req.GetVolumeCapabilities() {
		if err := checkCapability(fmt.Sprintf("volume_capabilities[%d]", i), c); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}
