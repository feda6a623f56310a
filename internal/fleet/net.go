//go:build linux

package fleet

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// NetOptions shape the network of StartNetwork.
type NetOptions struct {
	// Nodes is the number of namespaces, 1 to MaxNodes.
	Nodes int
	// NodeRate caps each node's link in each direction, in bytes per
	// second: its download (egress of the host-side veth) and its upload
	// (egress of the namespace-side veth). 0 leaves the links unshaped.
	NodeRate int64
	// OriginRate caps what the host sends into the bridge, in bytes per
	// second (egress of the bridge device): everything the origin and the
	// manager send to all nodes together. Traffic between nodes is bridged
	// from veth to veth and does not pass it. 0 leaves it unshaped.
	OriginRate int64
	// DataBytes sizes the tmpfs that holds every node's cache root and
	// kubelet directory; 0 means 1 GiB per node. tmpfs takes RAM only for
	// what is written.
	DataBytes int64
}

// MaxNodes bounds NetOptions.Nodes: node addresses are .11 to .250 of the
// fleet's /24.
const MaxNodes = 240

// Network is a bridge on the host and one namespace per node, with the
// tmpfs for their data, all removed when the test ends.
type Network struct {
	// ID is the short random suffix of every name this network made.
	ID string
	// Bridge is the bridge device; HostIP its address, the host side of
	// the fleet's /24 (Subnet), where the origin and the manager listen.
	Bridge string
	HostIP net.IP
	Subnet *net.IPNet
	// Nodes are the namespaces, in order: Nodes[i] has address .(11+i).
	Nodes []*Netns
	// DataDir is the tmpfs mount; each node has a directory below it.
	DataDir string
	// Opts are the options the network was made with.
	Opts NetOptions

	claim *subnetClaim
	procs procSet
}

// Netns is one node's network namespace and its link to the bridge.
type Netns struct {
	// Name is the namespace's name (ip netns list).
	Name string
	// HostIf is the host-side veth, enslaved to the bridge; NodeIf its
	// peer inside the namespace.
	HostIf, NodeIf string
	// IP is the node's address.
	IP net.IP
	// Dir is the node's own directory on the network's tmpfs.
	Dir string

	net *Network
}

// StartNetwork makes the bridge, the namespaces, the veths, the shaping and
// the tmpfs, and registers their removal and the leak check in t.Cleanup.
func StartNetwork(t testing.TB, opts NetOptions) *Network {
	t.Helper()
	RequireHost(t)
	if opts.Nodes < 1 || opts.Nodes > MaxNodes {
		t.Fatalf("fleet: NetOptions.Nodes %d: want 1 to %d", opts.Nodes, MaxNodes)
	}
	if opts.NodeRate < 0 || opts.OriginRate < 0 {
		t.Fatalf("fleet: NetOptions rates %d and %d: must not be negative", opts.NodeRate, opts.OriginRate)
	}
	if opts.DataBytes == 0 {
		opts.DataBytes = int64(opts.Nodes) << 30
	}
	claim, err := claimSubnet()
	if err != nil {
		t.Fatalf("fleet: %v", err)
	}
	id := randomID()
	n := &Network{ID: id, Bridge: "hfbr" + id, Subnet: claim.subnet, HostIP: hostAddr(claim.subnet, 1), Opts: opts, claim: claim}
	// The temp dir first: cleanups run last-in first-out, and its removal
	// must come after the unmount. The teardown is registered before
	// anything exists, so that a failure half-way still takes down what
	// was made; it skips what is not there.
	tmp := t.TempDir()
	t.Cleanup(func() { n.teardown(t) })
	if err := n.setUp(tmp); err != nil {
		t.Fatalf("fleet: %v", err)
	}
	return n
}

// setUp makes the devices, namespaces and mount in order.
func (n *Network) setUp(tmp string) error {
	ones, _ := n.Subnet.Mask.Size()
	if err := run("ip", "link", "add", n.Bridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "addr", "add", fmt.Sprintf("%s/%d", n.HostIP, ones), "dev", n.Bridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", n.Bridge, "up"); err != nil {
		return err
	}
	if err := shape(nil, n.Bridge, n.Opts.OriginRate); err != nil {
		return err
	}
	n.DataDir = filepath.Join(tmp, "fleet-"+n.ID)
	if err := os.MkdirAll(n.DataDir, 0o750); err != nil {
		return fmt.Errorf("make %s: %w", n.DataDir, err)
	}
	if err := unix.Mount("tmpfs", n.DataDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", n.Opts.DataBytes)); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", n.DataDir, err)
	}
	for i := range n.Opts.Nodes {
		ns, err := n.addNode(i)
		if err != nil {
			return err
		}
		n.Nodes = append(n.Nodes, ns)
	}
	return nil
}

// addNode makes node i's namespace and veth pair, addresses it and shapes
// both ends.
func (n *Network) addNode(i int) (*Netns, error) {
	ns := &Netns{Name: fmt.Sprintf("hfleet-%s-%d", n.ID, i), HostIf: fmt.Sprintf("hfh%s-%d", n.ID, i),
		NodeIf: fmt.Sprintf("hfn%s-%d", n.ID, i), IP: hostAddr(n.Subnet, 11+i), Dir: filepath.Join(n.DataDir, fmt.Sprintf("node-%d", i)), net: n}
	ones, _ := n.Subnet.Mask.Size()
	in := func(args ...string) []string { return append([]string{"ip", "netns", "exec", ns.Name}, args...) }
	steps := [][]string{
		{"ip", "netns", "add", ns.Name},
		{"ip", "link", "add", ns.HostIf, "type", "veth", "peer", "name", ns.NodeIf},
		{"ip", "link", "set", ns.HostIf, "master", n.Bridge},
		{"ip", "link", "set", ns.HostIf, "up"},
		{"ip", "link", "set", ns.NodeIf, "netns", ns.Name},
		in("ip", "addr", "add", fmt.Sprintf("%s/%d", ns.IP, ones), "dev", ns.NodeIf),
		in("ip", "link", "set", ns.NodeIf, "up"),
		in("ip", "link", "set", "lo", "up"),
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	if err := shape(nil, ns.HostIf, n.Opts.NodeRate); err != nil {
		return nil, err
	}
	if err := shape([]string{"ip", "netns", "exec", ns.Name}, ns.NodeIf, n.Opts.NodeRate); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(ns.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("make %s: %w", ns.Dir, err)
	}
	return ns, nil
}

// Burst is the token bucket's depth for a rate: 20 ms of it, at least
// 64 KiB (one GSO packet must fit, or tbf splits every one). Over any
// interval T a shaped link sends at most rate×T + Burst(rate) bytes.
func Burst(rate int64) int64 { return max(rate/50, 64<<10) }

// shape puts a token bucket filter on dev's egress (prefix runs tc in a
// namespace): tbf rather than htb because one flat rate per device is all
// the fleet needs, and tbf's bound (rate×T + burst over any T) is the one
// the tests assert. rate 0 leaves dev as it is.
func shape(prefix []string, dev string, rate int64) error {
	if rate == 0 {
		return nil
	}
	args := append(append([]string{}, prefix...), "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", fmt.Sprintf("%dbit", rate*8), "burst", fmt.Sprint(Burst(rate)), "latency", "100ms")
	return run(args[0], args[1:]...)
}

// hostAddr is address .i of a /24.
func hostAddr(subnet *net.IPNet, i int) net.IP {
	ip := slices.Clone(subnet.IP.To4())
	ip[3] = byte(i) //nolint:gosec // G115: i is at most 10+MaxNodes, checked in StartNetwork
	return ip
}

// randomID is 5 hex characters: names stay within IFNAMSIZ (15) as
// "hfh" + ID + "-" + up to 3 digits.
func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)[:5]
}

// run runs a command and returns an error naming it and its output.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// RequireHost stops a test that cannot run a fleet here: without root, ip,
// tc or network namespaces it fails saying what is missing and how to get
// it. Under -short it skips: the fast tier runs no fleet.
func RequireHost(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("fleet: needs root, iproute2 and network namespaces; the fast tier (-short) runs no fleet, make test does")
	}
	testenv.RequireRoot(t, "the fleet harness makes network namespaces, veths, a bridge, tc qdiscs and tmpfs mounts")
	testenv.RequireHost(t, "install Debian's iproute2 (hack/host-packages.sh, which make test runs, does: apt-get install -y iproute2)", "ip", "tc")
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Fatalf("fleet: needs network namespaces (a kernel with CONFIG_NET_NS): /proc/self/ns/net: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Fatalf("fleet: needs ip netns (iproute2 with network namespace support; apt-get install -y iproute2): %v: %s", err, bytes.TrimSpace(out))
	}
}
