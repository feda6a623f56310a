//go:build linux

// Package fleet_test runs fleets of Hydra nodes on one machine
// (internal/fleet): each node a network namespace with a shaped veth, its
// own address, cache root and hydra-csi --mode=node, the origin (MinIO
// behind a counting proxy) and the manager on the host side of the bridge.
// It checks the harness itself and what the nodes do with peer
// distribution off; the helpers at the bottom of this file are what the
// peer scenarios build on.
package fleet_test

import (
	"os"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/fleet"
	"github.com/hydra-csi/hydra/internal/testenv"
)

// bins are hydra-manager and hydra-csi, built once for the test binary.
var bins fleet.Binaries

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinaries(m, map[string]*string{
		"github.com/hydra-csi/hydra/cmd/hydra-manager": &bins.Manager,
		"github.com/hydra-csi/hydra/cmd/hydra-csi":     &bins.Plugin,
	}))
}

// Helpers for the scenarios, peers on or off.

// stageLimit bounds one node's staging of a release; it is a guard against
// a hang, not a measurement.
const stageLimit = 5 * time.Minute

// startFleet starts n nodes on links of nodeRate bytes/s each way, the
// origin unshaped, each node with nodeArgs's flags (nil: peers off;
// fleet.PeerArgs("64Mi"): peers on).
func startFleet(t *testing.T, n int, nodeRate int64, nodeArgs func(*fleet.Node) []string) *fleet.Fleet {
	t.Helper()
	return fleet.Start(t, fleet.Options{
		NetOptions: fleet.NetOptions{Nodes: n, NodeRate: nodeRate},
		Binaries:   bins,
		NodeArgs:   nodeArgs,
	})
}

// rollOut publishes r as channel/version, stages it on every node at
// once, waits for the manager to report it ready everywhere, checks every
// node's store byte for byte, and returns what the origin served for it.
func rollOut(t *testing.T, f *fleet.Fleet, channel, version string, r fleet.Release) int64 {
	t.Helper()
	before := f.OriginBytes() // nodes that staged the channel before follow its head from the publish on
	f.Publish(t, channel, version, r)
	f.StageAll(t, stageLimit, channel)
	f.WaitReady(t, time.Minute, channel, version)
	served := f.OriginBytes() - before
	f.VerifyStores(t, channel, version, r)
	t.Logf("%s/%s: %d bytes × %d nodes; the origin served %d bytes (%.2f copies)",
		channel, version, r.Bytes, len(f.Nodes), served, float64(served)/float64(r.Bytes))
	return served
}
