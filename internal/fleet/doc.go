//go:build linux

// Package fleet runs a fleet of Hydra nodes on one machine for tests and
// benchmarks: each node is a network namespace of its own, joined to a
// Linux bridge by a veth pair whose two ends are shaped with tc, with its
// own address, cache root and `hydra-csi --mode=node` process; the origin
// (MinIO, behind a byte-counting proxy) and the manager listen on the
// bridge's address on the host side.
//
// The layers, each usable alone:
//
//   - StartNetwork: the bridge, the namespaces, the veths, the shaping and
//     a tmpfs for the nodes' data; byte counters per link; dialing and
//     listening from inside a namespace (Netns.DialContext, Netns.Listen);
//     processes in a namespace (Netns.Command, Proc).
//   - Start: a Network plus MinIO, the counting proxy, hydra-manager and
//     one hydra-csi per namespace (Fleet, Node).
//   - Helpers the fleet tests and the fleet benchmark share: a mixed
//     release generated from a seed (MixedRelease), publishing it
//     (Fleet.Publish), staging it on nodes (Fleet.StageAll), waiting for
//     the manager to see it ready everywhere (Fleet.WaitReady), comparing
//     each node's store with the source (Fleet.VerifyStores), the origin's
//     byte count (Fleet.OriginBytes), a SIGKILL (Node.Kill) and sampling a
//     node's upload (Netns.SampleUpload).
//
// Everything needs root, iproute2 (ip, tc) and network namespaces. Without
// them Start fails, saying what is missing and how to get it; under
// `go test -short` it skips instead. Everything it made is taken down in
// t.Cleanup, and the test then fails naming whatever is left (a namespace,
// an interface, a mount or a process). docs/development.md, "Fleet
// harness", has the addresses, the shaping and how to clean up by hand
// after a test binary that was killed.
package fleet
