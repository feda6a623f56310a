package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
	mount "k8s.io/mount-utils"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// NodeGetInfo names the node. There is no attach limit and no topology.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.opts.NodeID}, nil
}

// NodeGetCapabilities advertises stage (the download) apart from publish
// (the per-pod view), stats, and a volume condition.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_VOLUME_CONDITION,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: t},
		}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeStageVolume makes the volume's release present in the node's store
// and records what it resolved. The download outlives the call: when ctx
// ends first, the call returns DeadlineExceeded (or Canceled), the
// download goes on, and kubelet's retry succeeds once it is done.
// Nothing is mounted at the staging path: views are per pod (publish).
func (d *Driver) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if err := d.paths.check("staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	if err := checkCapability("volume_capability", req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	attrs, err := d.nodeAttrs(req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	creds, err := parseSecrets("secrets", req.GetSecrets())
	if err != nil {
		return nil, err
	}
	done, err := d.inflight.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer done()
	d.opts.Keyring.Add(creds)
	_, err = d.stage(ctx, req.GetVolumeId(), attrs, req.GetStagingTargetPath(), false, creds)
	if err != nil {
		return nil, err
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// nodeAttrs parses a volume context on the node, where the channel is
// required and the memory medium needs the RAM tier.
func (d *Driver) nodeAttrs(vc map[string]string) (volumeAttrs, error) {
	attrs, err := parseAttrs("volume_context", vc, false)
	if err != nil {
		return attrs, err
	}
	if err := d.managers.check("volume_context."+AttrManager, attrs.Manager); err != nil {
		return attrs, err
	}
	if attrs.Medium == release.MediumMemory && d.opts.Memory == nil {
		return attrs, fmt.Errorf("driver: volume_context.medium %q: %w: this node plugin has no RAM tier (start it with --memory-root and --memory-size)",
			release.MediumMemory, errPrecondition)
	}
	return attrs, nil
}

// stage is NodeStageVolume's work, also done by the publish of an inline
// volume, with the volume's S3 credentials (nil: the node's). A volume
// staged before with the same attributes is answered from its record when
// its release is still here and creds can read it (the CSI spec: "this
// operation MUST be idempotent"); new credentials (a rotated Secret) are
// proved on the staged release and recorded.
func (d *Driver) stage(ctx context.Context, volumeID string, attrs volumeAttrs, stagingPath string, ephemeral bool, creds *source.Credentials) (stageRecord, error) {
	var rec stageRecord
	found, err := readRecord(d.stagePath(volumeID), &rec)
	if err != nil {
		return rec, err
	}
	if found && rec.Attrs != attrs {
		return rec, fmt.Errorf("driver: volume %s: %w: staged with %+v, asked for %+v", volumeID, errExists, rec.Attrs, attrs)
	}
	version, id := rec.Version, rec.Identity
	if found && d.tiers.StoredAs(attrs.Medium, attrs.Channel, rec.Version, rec.Identity) {
		if err := d.authorize(ctx, attrs, rec.Version, creds); err != nil {
			return rec, err
		}
		if rec.credentials() == creds.ID() {
			return rec, nil
		}
	} else if version, id, err = d.ensure(ctx, attrs, creds); err != nil {
		return rec, err
	}
	rec = stageRecord{VolumeID: volumeID, Attrs: attrs, Version: version, Identity: id, StagingPath: stagingPath, Ephemeral: ephemeral,
		Credentials: creds.ID()}
	if err := writeRecord(d.stagePath(volumeID), rec); err != nil {
		return rec, err
	}
	klog.FromContext(ctx).V(2).Info("Volume staged", "channel", attrs.Channel, "release", version,
		"medium", attrs.Medium, "credentials", creds.ID())
	return rec, nil
}

// NodeUnstageVolume forgets the staging record. The release stays in the
// store for other volumes until the node's retention removes it.
func (d *Driver) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if err := d.paths.check("staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	done, err := d.inflight.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer done()
	if err := removeRecord(d.stagePath(req.GetVolumeId())); err != nil {
		return nil, err
	}
	klog.FromContext(ctx).V(2).Info("Volume unstaged")
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume gives the pod its own view of the staged release and
// bind-mounts it read-only at the target path. An inline (ephemeral)
// volume is staged here first.
//  1. Find the staging record (or stage an inline volume).
//  2. Settle the credentials the pod reads with, its node-publish secret's
//     or else the stage's, and prove they read the staged release.
//  3. If the target is already a mount of this volume's view, succeed.
//  4. Create the pod's view (or find it: Create is idempotent).
//  5. Record which view goes to the target, so unpublish and stats find
//     it after a restart; then bind-mount it read-only.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	if err := d.checkPublish(req); err != nil {
		return nil, err
	}
	creds, err := parseSecrets("secrets", req.GetSecrets())
	if err != nil {
		return nil, err
	}
	done, err := d.inflight.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer done()
	d.opts.Keyring.Add(creds)
	rec, err := d.stagedFor(ctx, req, creds) // (1)
	if err != nil {
		return nil, err
	}
	acc, err := d.publishAccess(ctx, rec, creds) // (2)
	if err != nil {
		return nil, err
	}
	target := req.GetTargetPath()
	pub := publishRecord{VolumeID: req.GetVolumeId(), PodUID: podUID(req), Medium: rec.Attrs.Medium, TargetPath: target}
	if ok, err := d.alreadyPublished(ctx, target, pub); ok || err != nil { // (3)
		return &csi.NodePublishVolumeResponse{}, err
	}
	info, err := d.createView(ctx, rec, pub, req.GetVolumeContext(), acc) // (4)
	if err != nil {
		return nil, err
	}
	if err := d.mountView(info.Path, pub); err != nil { // (5)
		return nil, errors.Join(err, d.dropView(pub))
	}
	if d.opts.Agent != nil {
		d.opts.Agent.Poke()
	}
	klog.FromContext(ctx).V(2).Info("Volume published", "targetPath", target,
		"pod", klog.KRef(req.GetVolumeContext()[ctxPodNamespace], req.GetVolumeContext()[ctxPodName]), "release", info.Current)
	return &csi.NodePublishVolumeResponse{}, nil
}

func (d *Driver) checkPublish(req *csi.NodePublishVolumeRequest) error {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return err
	}
	if err := d.paths.check("target_path", req.GetTargetPath()); err != nil {
		return err
	}
	if err := checkCapability("volume_capability", req.GetVolumeCapability()); err != nil {
		return err
	}
	if isEphemeral(req.GetVolumeContext()) {
		return nil
	}
	return d.paths.check("staging_target_path", req.GetStagingTargetPath())
}

func isEphemeral(vc map[string]string) bool { return vc[ctxEphemeral] == "true" }

// stagedFor returns the volume's staging record; an inline volume is
// staged now, with the publish's credentials.
func (d *Driver) stagedFor(ctx context.Context, req *csi.NodePublishVolumeRequest, creds *source.Credentials) (stageRecord, error) {
	if isEphemeral(req.GetVolumeContext()) {
		attrs, err := d.nodeAttrs(req.GetVolumeContext())
		if err != nil {
			return stageRecord{}, err
		}
		return d.stage(ctx, req.GetVolumeId(), attrs, "", true, creds)
	}
	var rec stageRecord
	found, err := readRecord(d.stagePath(req.GetVolumeId()), &rec)
	if err == nil && !found {
		err = fmt.Errorf("driver: volume %s: %w: it is not staged on this node (NodeStageVolume first)", req.GetVolumeId(), errPrecondition)
	}
	return rec, err
}

// podUID is the pod's UID from podInfoOnMount, or a stable stand-in
// derived from the target path (a CO without pod info).
func podUID(req *csi.NodePublishVolumeRequest) string {
	if uid := req.GetVolumeContext()[ctxPodUID]; uid != "" {
		return uid
	}
	sum := sha256.Sum256([]byte(req.GetTargetPath()))
	return "target-" + hex.EncodeToString(sum[:12])
}

// alreadyPublished reports a target that is already this volume's mount.
// A corrupted mount (the view's filesystem gone) is unmounted so that it
// is mounted again.
func (d *Driver) alreadyPublished(ctx context.Context, target string, pub publishRecord) (bool, error) {
	mounted, err := d.mounter.IsMountPoint(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case mount.IsCorruptedMnt(err):
		klog.FromContext(ctx).Info("Unmounting a corrupted mount before publishing again", "targetPath", target, "err", err.Error())
		return false, d.mounter.Unmount(target)
	case err != nil:
		return false, fmt.Errorf("driver: target_path %s: %w", target, err)
	case !mounted:
		return false, nil
	}
	var have publishRecord
	found, err := readRecord(d.publishPath(target), &have)
	if err != nil {
		return false, err
	}
	if !found || have.VolumeID != pub.VolumeID {
		return false, fmt.Errorf("driver: target_path %s: %w: something else is mounted there", target, errExists)
	}
	return true, nil
}

// createView makes the pod's view of the staged release, recording the
// credentials it reads with. When the release left the store since
// staging (the node's retention), or what the store holds under its name
// is another publish (release.Identity), it is made present again, which
// needs the credentials themselves.
func (d *Driver) createView(ctx context.Context, rec stageRecord, pub publishRecord, vc map[string]string, acc access) (cache.ViewInfo, error) {
	spec := cache.ViewRecord{
		VolumeID: pub.VolumeID, PodUID: pub.PodUID, PodName: vc[ctxPodName], PodNamespace: vc[ctxPodNamespace],
		Channel: rec.Attrs.Channel, Medium: rec.Attrs.Medium, Pinned: rec.Attrs.Version, Credentials: acc.id,
	}
	info, err := cache.ViewInfo{}, fmt.Errorf("release %s/%s (%s): %w", rec.Attrs.Channel, rec.Version, rec.Identity, cache.ErrNotStored)
	if d.tiers.StoredAs(rec.Attrs.Medium, rec.Attrs.Channel, rec.Version, rec.Identity) {
		info, err = d.tiers.Link(spec, rec.Version)
	}
	if !errors.Is(err, cache.ErrNotStored) {
		return info, err
	}
	if !acc.known {
		return info, acc.unknown(pub.VolumeID)
	}
	version, _, err := d.ensure(ctx, rec.Attrs, acc.creds)
	if err != nil {
		return info, err
	}
	return d.tiers.Link(spec, version)
}

// mountView records the publish, creates the target directory (the CSI
// spec: the SP creates target_path) and bind-mounts the view read-only.
func (d *Driver) mountView(src string, pub publishRecord) error {
	if err := writeRecord(d.publishPath(pub.TargetPath), pub); err != nil {
		return err
	}
	if err := os.MkdirAll(pub.TargetPath, 0o750); err != nil {
		return fmt.Errorf("driver: target_path %s: %w", pub.TargetPath, err)
	}
	if err := bindReadOnly(src, pub.TargetPath); err != nil {
		return fmt.Errorf("driver: bind-mount view %s at %s: %w", src, pub.TargetPath, err)
	}
	return nil
}

// bindReadOnly bind-mounts src at target, read-only, nosuid and nodev.
// Linux applies a bind's flags only on a remount, so this takes two
// mount(2) calls, as mount(8) -o bind,ro does; a failed remount undoes the
// bind. It calls the kernel directly rather than through mount-utils,
// which would fork mount(8) twice: ~3 ms each, a fifth of a pod start's
// budget. Unmounting stays with mount-utils (CleanupMountPoint), which
// also handles corrupted and already-gone mounts.
func bindReadOnly(src, target string) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	const ro = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	if err := unix.Mount("", target, "", ro, ""); err != nil {
		return errors.Join(fmt.Errorf("remount read-only: %w", err), unix.Unmount(target, 0))
	}
	return nil
}

// dropView undoes a publish whose mount failed, or an unpublished one.
func (d *Driver) dropView(pub publishRecord) error {
	return errors.Join(d.tiers.Views(pub.Medium).Remove(pub.VolumeID, pub.PodUID), removeRecord(d.publishPath(pub.TargetPath)))
}

// NodeUnpublishVolume unmounts the target and removes the pod's view. It
// is idempotent: a target that is gone, not mounted, or a corrupted mount
// is handled (mount-utils' CleanupMountPoint, which also removes the
// target directory: the CSI spec says the SP MUST delete what it created
// at target_path).
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if err := d.paths.check("target_path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	done, err := d.inflight.acquire(req.GetVolumeId())
	if err != nil {
		return nil, err
	}
	defer done()
	target := req.GetTargetPath()
	var pub publishRecord
	found, err := readRecord(d.publishPath(target), &pub)
	if err != nil {
		return nil, err
	}
	if err := mount.CleanupMountPoint(target, d.mounter, true); err != nil {
		return nil, fmt.Errorf("driver: unmount target_path %s: %w", target, err)
	}
	if found {
		if err := d.dropView(pub); err != nil {
			return nil, err
		}
	}
	if err := d.unstageEphemeral(req.GetVolumeId()); err != nil {
		return nil, err
	}
	if d.opts.Agent != nil {
		d.opts.Agent.Poke()
	}
	klog.FromContext(ctx).V(2).Info("Volume unpublished", "targetPath", target)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// unstageEphemeral forgets an inline volume's staging: kubelet never
// calls NodeUnstageVolume for one.
func (d *Driver) unstageEphemeral(volumeID string) error {
	var rec stageRecord
	found, err := readRecord(d.stagePath(volumeID), &rec)
	if err != nil || !found || !rec.Ephemeral {
		return err
	}
	return removeRecord(d.stagePath(volumeID))
}
