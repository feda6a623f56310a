//go:build linux

package fleet_test

import (
	"testing"

	"github.com/hydra-csi/hydra/internal/fleet"
)

// TestPeersOff is today's behaviour, without --peer-listen: six nodes
// stage a ~300 MB release of mixed files, every node's store is the
// release byte for byte, and each node fetched its own copy from the
// origin: the proxy in front of MinIO served at least six copies.
func TestPeersOff(t *testing.T) {
	const nodes = 6
	f := startFleet(t, nodes, 32<<20, nil)
	r := fleet.MixedRelease(2, 300<<20)
	served := rollOut(t, f, "mixed", "v1", r)
	if want := nodes * r.Bytes; served < want {
		t.Errorf("the origin served %d bytes, want at least %d (%d nodes × %d): a node got its data elsewhere", served, want, nodes, r.Bytes)
	}
}
