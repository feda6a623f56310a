// Package chaos_test kills Hydra's parts at random during rollouts and
// checks that nothing is lost: the real hydra-manager binary twice on a
// real Consul server (which keeps its data on disk), the real hydra-csi
// binary as the node plugin and agent on two nodes, real MinIO, and a
// real etcd and kube-apiserver. The test plays the kubelet: it creates
// gated pods, makes their volumes with the CSI calls kubelet makes (real
// bind mounts), and computes their readiness from the gates.
package chaos_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

var managerBin, pluginBin string

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinaries(m, map[string]*string{
		"github.com/hydra-csi/hydra/cmd/hydra-manager": &managerBin,
		"github.com/hydra-csi/hydra/cmd/hydra-csi":     &pluginBin,
	}))
}

const (
	ns      = "chaos"
	channel = "catalog"
	dataset = "idx"
	bucket  = "data"
)

// proc is one killable process of the system under test, started again
// with the same command line (same ports, same state on disk).
type proc struct {
	t    testing.TB
	name string
	bin  string
	args []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProc(t testing.TB, name, bin string, env []string, args ...string) *proc {
	p := &proc{t: t, name: name, bin: bin, args: args, env: env, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			raw, _ := os.ReadFile(p.log)
			if len(raw) > 12<<10 {
				raw = raw[len(raw)-12<<10:]
			}
			t.Logf("%s log (tail):\n%s", name, raw)
		}
	})
	return p
}

// start launches the process; ready polls until it serves.
func (p *proc) start(ready func() bool) {
	p.t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	for !ready() {
		select {
		case <-done:
			p.t.Fatalf("%s exited at start; see its log %s", p.name, p.log)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after a minute; see its log %s", p.name, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process with sig (SIGKILL for a crash) and reaps it.
func (p *proc) stop(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}

// manager is one hydra-manager replica on the shared Consul store.
type manager struct {
	*proc
	url string
	cl  *client.Client
}

func startManager(t testing.TB, i int, consulAddr, kubeconfig string) *manager {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	m := &manager{url: "http://" + addr}
	m.proc = newProc(t, fmt.Sprintf("manager-%d", i), managerBin, nil,
		"--listen="+addr, "--store=consul://"+consulAddr+"/hydra-chaos", "--insecure-no-auth",
		"--kubeconfig="+kubeconfig, "--retention-interval=1h", "--shutdown-timeout=2s", "-v=2")
	var err error
	if m.cl, err = client.New(m.url); err != nil {
		t.Fatal(err)
	}
	m.start(m.ready)
	return m
}

func (m *manager) ready() bool { return get(m.url+"/readyz") == http.StatusOK }

// leads reads hydra_manager_leader from the replica's /metrics.
func (m *manager) leads() bool {
	resp, err := http.Get(m.url + "/metrics") //nolint:gosec // G107: the test's own loopback URL
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return strings.Contains(b.String(), "\nhydra_manager_leader 1\n")
}

func get(url string) int {
	resp, err := http.Get(url) //nolint:gosec // G107: the test's own loopback URL
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// node is one node: hydra-csi --mode=node (CSI node service and agent)
// with its own store, talking to one manager replica.
type node struct {
	*proc
	name, root, sock string
	// kubelet is the node's kubelet directory: pods' staging and target
	// paths live below it.
	kubelet string
	csi     csi.NodeClient
}

func startNode(t testing.TB, name, managerURL string, env []string) *node {
	dir := t.TempDir()
	n := &node{name: name, root: filepath.Join(dir, "cache"), sock: filepath.Join(dir, "csi", "csi.sock"),
		kubelet: filepath.Join(dir, "kubelet")}
	n.proc = newProc(t, name, pluginBin, env, "--mode=node", "--endpoint=unix://"+n.sock,
		"--node-id="+name, "--cache-root="+n.root, "--manager="+managerURL, "--kubelet-dir="+n.kubelet, "-v=2")
	conn, err := grpc.NewClient("unix://"+n.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	n.csi = csi.NewNodeClient(conn)
	n.start(n.ready)
	return n
}

func (n *node) ready() bool {
	c, err := net.Dial("unix", n.sock)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// system is every part, and the test's view of the managers.
type system struct {
	t        *testing.T
	kube     *testenv.Kube
	consul   *testenv.Consul
	minio    *testenv.MinIO
	managers []*manager
	nodes    []*node
	// published are the versions the manager confirmed, in order.
	mu        sync.Mutex
	published []string
}

// withManager runs f against the replicas in turn until one succeeds or
// timeout passes: during the chaos some are down, as behind a Service.
func (s *system) withManager(timeout time.Duration, what string, f func(*client.Client) error) {
	s.t.Helper()
	if err := s.tryManagers(timeout, f); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

func (s *system) tryManagers(timeout time.Duration, f func(*client.Client) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		for _, m := range s.managers {
			if last = f(m.cl); last == nil {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("no manager replica succeeded in %v: %w", timeout, last)
}

// content is a release file's bytes: a function of the version and the
// file, so that every stored byte can be checked.
func content(version string, i int) []byte {
	line := fmt.Sprintf("%s shard %d\n", version, i)
	return []byte(strings.Repeat(line, (256<<10+i*4096)/len(line)))
}

const shards = 6

// publish puts a release in MinIO and publishes it, retrying through the
// chaos (MinIO, Consul or a manager may be down). It runs beside the chaos
// loop, so it returns its error rather than failing the test.
func (s *system) publish(version string) error {
	prefix := channel + "/" + version + "/"
	deadline := time.Now().Add(2 * time.Minute)
	for i := range shards {
		for {
			if err := s.minio.TryPut(bucket, fmt.Sprintf("%sshard-%d.bin", prefix, i), content(version, i)); err == nil {
				break
			} else if time.Now().After(deadline) {
				return err
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	src, err := release.ParseSource("s3://" + bucket + "/" + prefix)
	if err != nil {
		return err
	}
	var man release.Manifest
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		lister, err := source.NewS3(ctx, source.Options{})
		if err == nil {
			man, err = lister.List(ctx, src)
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("list %s: %w", src, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	err = s.tryManagers(2*time.Minute, func(cl *client.Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := cl.Publish(ctx, channel, api.PublishRequest{Version: version,
			Datasets: []release.Dataset{{Name: dataset, Source: src.String(), Manifest: man}}})
		if client.IsConflict(err) { // an earlier attempt got through before its answer was lost
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("publish %s: %w", version, err)
	}
	s.mu.Lock()
	s.published = append(s.published, version)
	s.mu.Unlock()
	return nil
}
