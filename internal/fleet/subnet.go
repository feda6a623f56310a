//go:build linux

package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The fleet's /24s: 10.213.N.0/24 for N from firstSubnet on. Two fleets
// at once (test packages run in parallel) take different ones.
const (
	firstSubnet = 7
	subnetCount = 32
	// lockDir holds one lock file per /24; a fleet holds its lock with
	// flock(2) for as long as it lives, so the kernel drops it when the
	// process dies, however it dies.
	lockDir = "/run/hydra-fleet"
)

// subnetClaim is a /24 this process holds.
type subnetClaim struct {
	subnet *net.IPNet
	lock   *os.File
}

func (c *subnetClaim) release() {
	if c != nil && c.lock != nil {
		_ = c.lock.Close() // closing drops the flock
	}
}

// claimSubnet takes the first /24 of the fleet's range that no other fleet
// holds and that no address or route of this machine overlaps.
func claimSubnet() (*subnetClaim, error) {
	used, err := usedNetworks()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lockDir, 0o750); err != nil {
		return nil, fmt.Errorf("make %s: %w", lockDir, err)
	}
	var taken []string
	for i := firstSubnet; i < firstSubnet+subnetCount; i++ {
		_, subnet, _ := net.ParseCIDR(fmt.Sprintf("10.213.%d.0/24", i))
		if by := overlapping(subnet, used); by != "" {
			taken = append(taken, subnet.String()+" (overlaps "+by+")")
			continue
		}
		f, err := os.OpenFile(filepath.Join(lockDir, fmt.Sprintf("10.213.%d.lock", i)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			_ = f.Close()
			taken = append(taken, subnet.String()+" (another fleet holds it)")
			continue
		}
		return &subnetClaim{subnet: subnet, lock: f}, nil
	}
	return nil, fmt.Errorf("no free /24 for the fleet, every candidate is taken: %s; "+
		"a fleet whose test binary was killed leaves its bridge: see docs/development.md, \"Fleet harness\", to remove it",
		strings.Join(taken, ", "))
}

// overlapping names the address or route of used that overlaps subnet,
// or returns "".
func overlapping(subnet *net.IPNet, used []usedNet) string {
	for _, u := range used {
		if u.n.Contains(subnet.IP) || subnet.Contains(u.n.IP) {
			return u.what
		}
	}
	return ""
}

type usedNet struct {
	n    *net.IPNet
	what string
}

// usedNetworks lists every IPv4 address and route (all tables) of the
// host's namespace; the default route is left out, as it claims nothing.
func usedNetworks() ([]usedNet, error) {
	var addrs []struct {
		IfName   string `json:"ifname"`
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	if err := ipJSON(&addrs, "-4", "-j", "addr", "show"); err != nil {
		return nil, err
	}
	if err := ipJSON(&routes, "-4", "-j", "route", "show", "table", "all"); err != nil {
		return nil, err
	}
	var used []usedNet
	for _, a := range addrs {
		for _, ai := range a.AddrInfo {
			if _, n, err := net.ParseCIDR(fmt.Sprintf("%s/%d", ai.Local, ai.PrefixLen)); err == nil {
				used = append(used, usedNet{n, "address " + ai.Local + " of " + a.IfName})
			}
		}
	}
	for _, r := range routes {
		if r.Dst == "default" || r.Dst == "" {
			continue
		}
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if _, n, err := net.ParseCIDR(dst); err == nil {
			used = append(used, usedNet{n, "route " + r.Dst + " via " + r.Dev})
		}
	}
	return used, nil
}

func ipJSON(out any, args ...string) error {
	raw, err := exec.Command("ip", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("ip %s: read its JSON: %w", strings.Join(args, " "), err)
	}
	return nil
}
