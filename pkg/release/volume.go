package release

import (
	"crypto/sha256"
	"encoding/hex"
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
