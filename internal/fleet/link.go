//go:build linux

package fleet

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Counters are a device's byte counters at one moment.
type Counters struct {
	At     time.Time
	RX, TX int64
}

// readCounters reads /sys/class/net/DEV/statistics of the host's
// namespace.
func readCounters(dev string) (Counters, error) {
	c := Counters{At: time.Now()}
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"rx_bytes", &c.RX}, {"tx_bytes", &c.TX}} {
		raw, err := os.ReadFile(filepath.Join("/sys/class/net", dev, "statistics", f.name))
		if err != nil {
			return Counters{}, fmt.Errorf("fleet: read the counters of %s: %w", dev, err)
		}
		if *f.dst, err = strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64); err != nil {
			return Counters{}, fmt.Errorf("fleet: counter %s of %s: %w", f.name, dev, err)
		}
	}
	return c, nil
}

// Link reads the node's veth from the host side. A veth pair passes every
// frame one end sends to the other, so the host end's TX is what the node
// downloaded and its RX what the node uploaded (both counted with their
// Ethernet headers, as tbf counts them).
func (ns *Netns) Link() (Counters, error) { return readCounters(ns.HostIf) }

// Uploaded is the bytes the node has sent on its link so far.
func (ns *Netns) Uploaded() (int64, error) {
	c, err := ns.Link()
	return c.RX, err
}

// Downloaded is the bytes the node has received on its link so far.
func (ns *Netns) Downloaded() (int64, error) {
	c, err := ns.Link()
	return c.TX, err
}

// BridgeCounters reads the bridge device: its TX is what the host itself
// sent into the fleet (the origin and the manager), the traffic that
// NetOptions.OriginRate shapes.
func (n *Network) BridgeCounters() (Counters, error) { return readCounters(n.Bridge) }

// Sampler reads a counter every interval until Stop, keeping each reading.
type Sampler struct {
	read    func() (Counters, error)
	stop    chan struct{}
	done    chan struct{}
	samples []Counters
	err     error
}

// SampleLink samples the node's link every interval; SampleUpload is the
// same, named for what the peer tests look at (Counters.RX).
func (ns *Netns) SampleLink(interval time.Duration) *Sampler { return startSampler(ns.Link, interval) }

// SampleUpload samples the node's link; the upload is each sample's RX.
func (ns *Netns) SampleUpload(interval time.Duration) *Sampler { return ns.SampleLink(interval) }

// SampleBridge samples the bridge device (the host's traffic into the
// fleet is each sample's TX).
func (n *Network) SampleBridge(interval time.Duration) *Sampler {
	return startSampler(n.BridgeCounters, interval)
}

func startSampler(read func() (Counters, error), interval time.Duration) *Sampler {
	s := &Sampler{read: read, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop(interval)
	return s
}

func (s *Sampler) loop(interval time.Duration) {
	defer close(s.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		c, err := s.read()
		if err != nil {
			s.err = err
			return
		}
		s.samples = append(s.samples, c)
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
	}
}

// Stop ends the sampling, takes one last sample and returns them all.
func (s *Sampler) Stop() ([]Counters, error) {
	close(s.stop)
	<-s.done
	if s.err == nil {
		if c, err := s.read(); err == nil {
			s.samples = append(s.samples, c)
		}
	}
	return s.samples, s.err
}

// Window is the largest number of bytes a counter moved over an interval
// of at least span between two samples, with that interval's length.
type Window struct {
	Bytes    int64
	Duration time.Duration
	From     time.Time
}

// MaxWindow scans the samples for the interval of at least span (the
// shortest such from each sample on) over which value moved the most.
// value picks the counter: func(c Counters) int64 { return c.RX }.
func MaxWindow(samples []Counters, span time.Duration, value func(Counters) int64) (Window, bool) {
	var best Window
	found := false
	j := 0
	for i := range samples {
		for j < len(samples) && samples[j].At.Sub(samples[i].At) < span {
			j++
		}
		if j == len(samples) {
			break
		}
		w := Window{Bytes: value(samples[j]) - value(samples[i]), Duration: samples[j].At.Sub(samples[i].At), From: samples[i].At}
		if !found || w.Bytes > best.Bytes {
			best, found = w, true
		}
	}
	return best, found
}

// Limit is what a link shaped at rate may carry over d: rate×d plus one
// burst.
func Limit(rate int64, d time.Duration) int64 {
	return int64(float64(rate)*d.Seconds()) + Burst(rate)
}

// RX and TX pick a counter for MaxWindow.
func RX(c Counters) int64 { return c.RX }

// TX picks the transmitted bytes for MaxWindow.
func TX(c Counters) int64 { return c.TX }

// inNetns runs f on an OS thread that has joined the namespace, then
// moves the thread back. Sockets keep the namespace they were made in, so
// a connection or listener made by f lives in the node's network for
// good, wherever it is used after.
func (ns *Netns) inNetns(f func() error) error {
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("fleet: open this thread's network namespace: %w", err)
	}
	defer self.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("fleet: open namespace %s: %w", ns.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("fleet: enter namespace %s: %w", ns.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it ends with this goroutine
		// instead of running other goroutines in the wrong network.
		return fmt.Errorf("fleet: leave namespace %s: %w", ns.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// DialContext connects from inside the node's namespace, as a process on
// the node would: for http.Transport.DialContext. Give addresses as IPs.
func (ns *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := ns.inNetns(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// Listen listens inside the node's namespace, e.g. on the node's address
// for a server that plays a peer.
func (ns *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.inNetns(func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}
