package release

import (
	"crypto/sha256"
	"encoding/hex"
)

// The media a volume reads from: the volume attribute `medium`, a view
// record's medium (empty there: disk) and a reported view's.
const (
	// MediumDisk reads the node store's disk tier.
	MediumDisk = "disk"
	// MediumMemory reads the memory tier, a copy of the disk tier's
	// release in a tmpfs.
	MediumMemory = "memory"
)

// VolumeID is the CSI volume ID that hydra-csi's CreateVolume gives the
// volume called name (csi-provisioner passes the PersistentVolume's name)
// of channel: hydra-<channel>-<16 hex digits of sha256(name)>. It is a pure
// function of the two, so the manager finds the PVC behind a view a node
// reports from the claim's spec.volumeName alone, without reading
// PersistentVolumes. pkg/driver's test holds its CreateVolume to it.
func VolumeID(channel, name string) string {
	sum := sha256.Sum256([]byte(name))
	return "hydra-" + channel + "-" + hex.EncodeToString(sum[:8])
}
