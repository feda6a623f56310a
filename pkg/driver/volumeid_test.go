package driver

import (
	"testing"

	"github.com/hydra-csi/hydra/pkg/release"
)

// TestVolumeIDMatchesRelease holds CreateVolume's IDs to release.VolumeID,
// by which the manager finds the PVC of a view to record Events on.
func TestVolumeIDMatchesRelease(t *testing.T) {
	for _, tc := range []struct{ channel, name string }{
		{"search-index", "pvc-6f1c2b4e-3d7a-4b8e-9a51-0c2d8e7f6a13"},
		{"a", "x"},
	} {
		if got, want := volumeID(tc.channel, tc.name), release.VolumeID(tc.channel, tc.name); got != want {
			t.Errorf("volumeID(%q, %q) = %q, release.VolumeID = %q", tc.channel, tc.name, got, want)
		}
	}
}
