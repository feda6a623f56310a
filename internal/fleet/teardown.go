//go:build linux

package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// teardown removes everything the network made, then fails the test
// naming whatever is left:
//
//  1. every process started in a namespace is killed and reaped;
//  2. any other process still in a namespace (ip netns pids) is killed
//     and reported: the harness did not start it, so it leaked;
//  3. the host-side veths (each takes its peer in the namespace and the
//     qdiscs along) and the bridge are deleted, then the namespaces;
//  4. the tmpfs is unmounted;
//  5. what is left is looked up afresh: namespaces, interfaces named with
//     the network's ID, the mount, live processes.
func (n *Network) teardown(t testing.TB) {
	defer n.claim.release()
	n.procs.killAll() // (1)
	var leaks []string
	for _, ns := range n.Nodes {
		if pids := nsPids(ns.Name); len(pids) > 0 { // (2)
			leaks = append(leaks, fmt.Sprintf("processes %v in namespace %s", pids, ns.Name))
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	}
	for _, dev := range n.links() { // (3): one end of a veth takes its peer along
		if err := run("ip", "link", "del", dev); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			t.Errorf("fleet: teardown: %v", err)
		}
	}
	for i := range n.Opts.Nodes { // by name, also for nodes setUp did not finish
		name := fmt.Sprintf("hfleet-%s-%d", n.ID, i)
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			if err := run("ip", "netns", "del", name); err != nil {
				t.Errorf("fleet: teardown: %v", err)
			}
		}
	}
	if n.DataDir != "" && mounted(n.DataDir) { // (4)
		if err := unix.Unmount(n.DataDir, unix.MNT_DETACH); err != nil {
			t.Errorf("fleet: teardown: unmount %s: %v", n.DataDir, err)
		}
	}
	leaks = append(leaks, n.leftovers()...) // (5)
	if len(leaks) > 0 {
		t.Errorf("fleet: teardown left or found behind: %s", strings.Join(leaks, "; "))
	}
}

// leftovers is what of the network still exists.
func (n *Network) leftovers() []string {
	var left []string
	for i := range n.Opts.Nodes {
		name := fmt.Sprintf("hfleet-%s-%d", n.ID, i)
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			left = append(left, "namespace "+name)
		}
	}
	for _, dev := range n.links() {
		left = append(left, "interface "+dev)
	}
	if n.DataDir != "" && mounted(n.DataDir) {
		left = append(left, "mount "+n.DataDir)
	}
	for _, p := range n.procs.alive() {
		left = append(left, "process "+p)
	}
	return left
}

// links are the host's interfaces of this network: its bridge and its
// host-side veths.
func (n *Network) links() []string {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil
	}
	var devs []string
	for _, e := range entries {
		if e.Name() == n.Bridge || strings.HasPrefix(e.Name(), "hfh"+n.ID+"-") {
			devs = append(devs, e.Name())
		}
	}
	return devs
}

// nsPids are the processes in a namespace, by ip netns pids.
func nsPids(name string) []int {
	out, err := exec.Command("ip", "netns", "pids", name).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mounted reports whether path is a mount point in this mount namespace.
func mounted(path string) bool {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// Leftovers names what of the network still exists: after its test
// ended, nothing should.
func (n *Network) Leftovers() []string { return n.leftovers() }
