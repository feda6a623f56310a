//go:build linux

package fleet

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/client"
)

// Binaries are the commands a fleet runs, built from the repository (a
// TestMain builds them with testenv.RunWithBinaries; the benchmark with
// go build).
type Binaries struct {
	Manager string // hydra-manager
	Plugin  string // hydra-csi
}

// Options configure Start.
type Options struct {
	NetOptions
	Binaries Binaries
	// NodeArgs returns more hydra-csi flags for a node, e.g. PeerArgs; nil
	// adds none (peer distribution off, as by default).
	NodeArgs func(n *Node) []string
	// Verbosity is the -v of the manager and the nodes; 0 means 2.
	Verbosity int
}

// Fleet is a Network with the origin, the manager and a hydra-csi node
// plugin in every namespace.
type Fleet struct {
	*Network
	// MinIO is the object store; Origin the counting proxy in front of
	// it on the bridge, the endpoint every node downloads from.
	MinIO  *testenv.MinIO
	Origin *testenv.FaultProxy
	// ManagerURL is the manager on the bridge; Admin a client of it with
	// an admin token.
	ManagerURL string
	Admin      *client.Client
	Manager    *Proc
	// Nodes are the node plugins, Nodes[i] in Network.Nodes[i].
	Nodes []*Node

	opts       Options
	bucket     string
	nodeTokens []string
	env        []string
}

// Start brings up a fleet: the network, MinIO on the bridge address with a
// counting proxy in front, hydra-manager on the bridge address with a
// token per node, and one hydra-csi --mode=node per namespace, each waited
// for until its CSI Identity Probe answers ready. The test's environment
// gets MinIO's AWS settings (Publish lists with them), so the test must not
// be parallel.
func Start(t testing.TB, opts Options) *Fleet {
	t.Helper()
	if opts.Binaries.Manager == "" || opts.Binaries.Plugin == "" {
		t.Fatalf("fleet: Options.Binaries %+v: both hydra-manager and hydra-csi are needed (build them in TestMain)", opts.Binaries)
	}
	if opts.Verbosity == 0 {
		opts.Verbosity = 2
	}
	testenv.Tool(t, "minio") // before the network: a missing tool fails first
	n := StartNetwork(t, opts.NetOptions)
	f := &Fleet{Network: n, opts: opts, bucket: "data"}
	f.startOrigin(t)
	f.startManager(t)
	for i, ns := range n.Nodes {
		f.Nodes = append(f.Nodes, f.newNode(t, i, ns))
	}
	for _, node := range f.Nodes {
		node.Start(t)
	}
	return f
}

// startOrigin starts MinIO and the proxy on the bridge, makes the bucket
// and points the test's AWS settings at MinIO itself (not the proxy, so
// that publishing is not counted as origin traffic).
func (f *Fleet) startOrigin(t testing.TB) {
	t.Helper()
	host := f.HostIP.String()
	f.MinIO = testenv.StartMinIOOn(t, host)
	f.Origin = testenv.StartFaultProxyOn(t, host, f.MinIO.Endpoint)
	for _, kv := range f.MinIO.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	f.MinIO.CreateBucket(t, f.bucket)
	// The processes' environment: the test's without anything that would
	// point them elsewhere, plus MinIO's credentials and the proxy.
	f.env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HYDRA_") || strings.HasPrefix(kv, "NODE_NAME=") ||
			strings.HasPrefix(kv, "KUBERNETES_") || strings.HasPrefix(kv, "KUBECONFIG=")
	})
	f.env = append(f.env, f.MinIO.Env()...)
	f.env = append(f.env, "AWS_ENDPOINT_URL_S3="+f.Origin.URL, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// startManager runs hydra-manager on the bridge address with a bbolt
// store and tokens: one admin token for the test, one node token per node
// bound to its name.
func (f *Fleet) startManager(t testing.TB) {
	t.Helper()
	admin := "fleet-admin-" + randomToken()
	lines := []string{admin + ",admin"}
	for i := range f.Opts.Nodes {
		tok := fmt.Sprintf("fleet-node-%d-%s", i, randomToken())
		f.nodeTokens = append(f.nodeTokens, tok)
		lines = append(lines, tok+",node,"+NodeName(i))
	}
	tokens := filepath.Join(f.DataDir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatalf("fleet: write %s: %v", tokens, err)
	}
	addr := freeAddr(t, f.HostIP.String())
	f.ManagerURL = "http://" + addr
	f.Manager = f.HostCommand(t, "manager", f.env, f.opts.Binaries.Manager,
		"--listen="+addr, "--store=bolt://"+filepath.Join(f.DataDir, "manager", "state.db"), "--token-file="+tokens,
		"--shutdown-timeout=2s", "-v="+strconv.Itoa(f.opts.Verbosity))
	if err := os.MkdirAll(filepath.Join(f.DataDir, "manager"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Manager.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "hydra-manager at "+f.ManagerURL+" ready", f.Manager, func() bool {
		return httpStatus(f.ManagerURL+"/readyz") == http.StatusOK
	})
	var err error
	if f.Admin, err = client.New(f.ManagerURL, client.WithToken(admin)); err != nil {
		t.Fatalf("fleet: manager client: %v", err)
	}
}

// NodeName is the node name of namespace i: node-0, node-1, ...
func NodeName(i int) string { return fmt.Sprintf("node-%d", i) }

// freeAddr is HOST:PORT with a port that was free on host a moment ago.
func freeAddr(t testing.TB, host string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("fleet: find a free port on %s: %v", host, err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomToken() string { return randomID() + randomID() + randomID() + randomID() }

func httpStatus(url string) int {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url) //nolint:gosec // G107: the fleet's own bridge address
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// waitUntil polls cond every 50 ms until it holds, failing the test after
// limit or when p exits first.
func waitUntil(t testing.TB, limit time.Duration, what string, p *Proc, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		select {
		case <-p.Exited():
			t.Fatalf("fleet: waiting for %s: %s exited; its log:\n%s", what, p.Name, p.Tail(logTail))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet: %s: not after %v; %s's log:\n%s", what, limit, p.Name, p.Tail(logTail))
		}
	}
}

// NodeClient is a manager client with node i's token: what that node's
// plugin sends (a test that plays a node reports and polls with it).
func (f *Fleet) NodeClient(t testing.TB, i int) *client.Client {
	t.Helper()
	c, err := client.New(f.ManagerURL, client.WithToken(f.nodeTokens[i]))
	if err != nil {
		t.Fatalf("fleet: node client: %v", err)
	}
	return c
}
