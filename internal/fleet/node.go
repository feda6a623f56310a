//go:build linux

package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// DriverName is the CSI driver name the nodes run under (hydra-csi's
// default).
const DriverName = "hydra.csi.dev"

// PeerPort is the port PeerArgs serves peers on.
const PeerPort = 7470

// Node is one hydra-csi --mode=node in its namespace.
type Node struct {
	*Netns
	// Index is the node's position; Name its node name (NodeName).
	Index int
	Name  string
	// Root is its --cache-root, Kubelet its --kubelet-dir and Sock its CSI
	// socket, all on the network's tmpfs. The plugin's mounts (staging,
	// views) live in its own mount namespace and go with its process.
	Root, Kubelet, Sock string
	// Args is its whole hydra-csi command line after the binary.
	Args []string
	Proc *Proc
	// CSI and Identity talk to the socket; the connection survives
	// restarts (gRPC reconnects).
	CSI      csi.NodeClient
	Identity csi.IdentityClient
}

// PeerArgs turns peer distribution on for a node: it serves on its own
// address, port PeerPort, and advertises that address; uploadRate is
// --peer-upload-rate ("" keeps the default). For Options.NodeArgs.
func PeerArgs(uploadRate string) func(n *Node) []string {
	return func(n *Node) []string {
		addr := net.JoinHostPort(n.IP.String(), strconv.Itoa(PeerPort))
		args := []string{"--peer-listen=" + addr, "--peer-advertise=" + addr}
		if uploadRate != "" {
			args = append(args, "--peer-upload-rate="+uploadRate)
		}
		return args
	}
}

// PeerURL is the base URL of the node's peer server (when PeerArgs
// started it).
func (n *Node) PeerURL() string {
	return "http://" + net.JoinHostPort(n.IP.String(), strconv.Itoa(PeerPort))
}

// newNode prepares node i's directories, token and command line.
func (f *Fleet) newNode(t testing.TB, i int, ns *Netns) *Node {
	t.Helper()
	n := &Node{Netns: ns, Index: i, Name: NodeName(i), Root: filepath.Join(ns.Dir, "cache"),
		Kubelet: filepath.Join(ns.Dir, "kubelet"), Sock: filepath.Join(ns.Dir, "csi", "csi.sock")}
	token := filepath.Join(ns.Dir, "token")
	if err := os.WriteFile(token, []byte(f.nodeTokens[i]+"\n"), 0o600); err != nil {
		t.Fatalf("fleet: write %s: %v", token, err)
	}
	if err := os.MkdirAll(n.Kubelet, 0o750); err != nil {
		t.Fatalf("fleet: %v", err)
	}
	n.Args = []string{"--mode=node", "--node-id=" + n.Name, "--endpoint=unix://" + n.Sock, "--cache-root=" + n.Root,
		"--kubelet-dir=" + n.Kubelet, "--manager=" + f.ManagerURL, "--token-file=" + token,
		"--shutdown-timeout=5s", "-v=" + strconv.Itoa(f.opts.Verbosity)}
	if f.opts.NodeArgs != nil {
		n.Args = append(n.Args, f.opts.NodeArgs(n)...)
	}
	n.Proc = ns.Command(t, n.Name, f.env, append([]string{f.opts.Binaries.Plugin}, n.Args...)...)
	conn, err := grpc.NewClient("unix://"+n.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("fleet: %s: CSI client: %v", n.Name, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	n.CSI, n.Identity = csi.NewNodeClient(conn), csi.NewIdentityClient(conn)
	return n
}

// Start runs the plugin (again, after Kill or Stop) and waits until its
// Identity Probe answers ready.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.Proc.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, n.Name+"'s CSI socket ready", n.Proc, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		resp, err := n.Identity.Probe(ctx, &csi.ProbeRequest{})
		return err == nil && resp.GetReady().GetValue()
	})
}

// Kill ends the plugin with SIGKILL, as a crash of the node would.
func (n *Node) Kill() { n.Proc.Kill() }

// Stop ends the plugin with SIGTERM.
func (n *Node) Stop() { n.Proc.Stop() }

// VolumeID is the volume Stage uses for a channel.
func VolumeID(channel string) string { return "fleet-" + channel }

// Stage is kubelet's NodeStageVolume of a volume of channel on the node:
// the node downloads the channel's head (or what volumeContext pins) and
// returns once it is installed. A call that reaches ctx's deadline while
// the download goes on returns that error; the download continues.
func (n *Node) Stage(ctx context.Context, channel string, volumeContext map[string]string) error {
	vol := VolumeID(channel)
	staging := filepath.Join(n.Kubelet, "plugins", "kubernetes.io", "csi", DriverName, vol, "globalmount")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return fmt.Errorf("fleet: %s: %w", n.Name, err)
	}
	vc := map[string]string{"channel": channel}
	for k, v := range volumeContext {
		vc[k] = v
	}
	_, err := n.CSI.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol, StagingTargetPath: staging,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
		}, VolumeContext: vc})
	if err != nil {
		return fmt.Errorf("fleet: NodeStageVolume %s on %s: %w", vol, n.Name, err)
	}
	return nil
}

// StageUntil calls Stage with calls of at most 30 s each until one
// succeeds or limit passes, as kubelet retries.
func (n *Node) StageUntil(limit time.Duration, channel string, volumeContext map[string]string) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(30*time.Second, time.Until(deadline)))
		err := n.Stage(ctx, channel, volumeContext)
		cancel()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w (still failing after %v)", err, limit)
		}
		select {
		case <-n.Proc.Exited():
			return fmt.Errorf("%w (and %s exited)", err, n.Name)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// HTTPClient is a client whose connections start in the node's namespace:
// what the node itself would send, e.g. to another node's peer server.
func (ns *Netns) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: ns.DialContext, Proxy: nil}}
}

// MetricsPort is the port MetricsArgs serves a node's /metrics on.
const MetricsPort = 9808

// MetricsArgs serves the node's /healthz and /metrics on its own address
// (--health-address), for Metric. For Options.NodeArgs, with others.
func MetricsArgs(n *Node) []string {
	return []string{"--health-address=" + net.JoinHostPort(n.IP.String(), strconv.Itoa(MetricsPort))}
}

// Metric sums the samples of one metric family on the node's /metrics
// (MetricsArgs): every series whose labels include want.
func (n *Node) Metric(name string, want map[string]string) (float64, error) {
	resp, err := http.Get("http://" + net.JoinHostPort(n.IP.String(), strconv.Itoa(MetricsPort)) + "/metrics") //nolint:noctx // a test's scrape
	if err != nil {
		return 0, fmt.Errorf("fleet: %s metrics: %w", n.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("fleet: %s metrics: %w", n.Name, err)
	}
	mf, ok := families[name]
	if !ok {
		return 0, fmt.Errorf("fleet: %s exports no %s", n.Name, name)
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum, nil
}
