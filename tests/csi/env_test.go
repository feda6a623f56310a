// Package csi_test drives the real hydra-csi binary over its socket as
// kubelet and csi-provisioner would: a plugin process started, killed with
// SIGKILL and restarted on the same root, real bind mounts (run as root), a
// real manager (bbolt, in-process) and releases published from a real
// MinIO, optionally behind a fault proxy.
package csi_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// pluginBin is hydra-csi built once for the test binary (TestMain).
var pluginBin string

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinary(m, "github.com/hydra-csi/hydra/cmd/hydra-csi", &pluginBin))
}

// dataset is the name of the one dataset every test release has.
const dataset = "idx"

// world is MinIO (bucket "data") and a manager without auth.
type world struct {
	minio *testenv.MinIO
	mgr   *managertest.Manager
	cl    *client.Client
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldWith(t, managertest.Options{})
}

// newWorldWith is newWorld with a manager run with opts.
func newWorldWith(t testing.TB, opts managertest.Options) *world {
	t.Helper()
	testenv.RequireRoot(t, "these tests bind-mount and mount tmpfs")
	m := testenv.StartMinIO(t)
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	m.CreateBucket(t, "data")
	mgr := managertest.Start(t, opts)
	cl, err := client.New(mgr.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &world{minio: m, mgr: mgr, cl: cl}
}

// channel creates a channel on the manager.
func (w *world) channel(t testing.TB, name string) {
	t.Helper()
	if _, err := w.cl.CreateChannel(context.Background(), name, release.Config{}); err != nil {
		t.Fatal(err)
	}
}

// publish uploads files to s3://data/<channel>/<version>/ and publishes
// them as the release's one dataset; the head moves to it.
func (w *world) publish(t testing.TB, channel, version string, files map[string][]byte) {
	t.Helper()
	prefix := channel + "/" + version + "/"
	for name, body := range files {
		w.minio.Put(t, "data", prefix+name, body)
	}
	ctx := context.Background()
	lister, err := source.NewS3(ctx, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := release.ParseSource("s3://data/" + prefix)
	if err != nil {
		t.Fatal(err)
	}
	man, err := lister.List(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.cl.Publish(ctx, channel, api.PublishRequest{Version: version,
		Datasets: []release.Dataset{{Name: dataset, Source: src.String(), Manifest: man}}})
	if err != nil {
		t.Fatal(err)
	}
}

// pluginConfig is how one plugin process runs.
type pluginConfig struct {
	mode       string // default all
	manager    string // default the world's
	s3Endpoint string // default MinIO itself
	cacheRoot  string // default <dir>/cache
	memoryRoot string
	memorySize string
	// args are more flags; env more variables, which win over the
	// world's (AWS_ACCESS_KEY_ID=... for the node's own credentials).
	args, env []string
}

// plugin is a hydra-csi process and a connection to its socket. The
// connection outlives restarts: gRPC reconnects to the same socket.
type plugin struct {
	dir, sock, root string
	args, env       []string
	log             string

	cmd    *exec.Cmd
	exited chan struct{}

	node  csi.NodeClient
	ctrl  csi.ControllerClient
	ident csi.IdentityClient
}

// startPlugin runs hydra-csi on a socket below a fresh temp dir. In
// t.Cleanup it stops the process and lazily unmounts whatever is still
// mounted below the dir (targets, tmpfs roots).
func startPlugin(t testing.TB, w *world, cfg pluginConfig) *plugin {
	t.Helper()
	dir := t.TempDir()
	if cfg.mode == "" {
		cfg.mode = "all"
	}
	if cfg.manager == "" {
		cfg.manager = w.mgr.URL
	}
	if cfg.s3Endpoint == "" {
		cfg.s3Endpoint = w.minio.Endpoint
	}
	if cfg.cacheRoot == "" {
		cfg.cacheRoot = filepath.Join(dir, "cache")
	}
	p := &plugin{dir: dir, sock: filepath.Join(dir, "csi", "csi.sock"), root: cfg.cacheRoot, log: filepath.Join(dir, "plugin.log")}
	p.args = []string{"--mode=" + cfg.mode, "--endpoint=unix://" + p.sock, "--node-id=node-a",
		"--cache-root=" + cfg.cacheRoot, "--manager=" + cfg.manager, "--shutdown-timeout=5s", "-v=4",
		// The test plays kubelet with its root in dir: staging/, pods/.
		"--kubelet-dir=" + dir}
	if cfg.memoryRoot != "" {
		p.args = append(p.args, "--memory-root="+cfg.memoryRoot, "--memory-size="+cfg.memorySize)
	}
	p.args = append(p.args, cfg.args...)
	p.env = append(pluginEnv(w, cfg.s3Endpoint), cfg.env...)
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("plugin log (tail):\n%s", tail(p.log, 16<<10))
		}
		unmountUnder(dir)
	})
	p.start(t)
	conn, err := grpc.NewClient("unix://"+p.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.node, p.ctrl, p.ident = csi.NewNodeClient(conn), csi.NewControllerClient(conn), csi.NewIdentityClient(conn)
	p.waitServing(t)
	return p
}

// pluginEnv is the test's environment with the AWS settings of MinIO,
// reached at endpoint (MinIO or a fault proxy in front of it).
func pluginEnv(w *world, endpoint string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "HYDRA_") || strings.HasPrefix(kv, "NODE_NAME=")
	})
	env = append(env, w.minio.Env()...)
	return append(env, "AWS_ENDPOINT_URL_S3="+endpoint, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// start runs the process; its output goes to p.log (appended across
// restarts).
func (p *plugin) start(t testing.TB) {
	t.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(pluginBin, p.args...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { _ = cmd.Wait(); close(exited) }(p.cmd, p.exited)
}

// waitServing waits until Probe answers ready.
func (p *plugin) waitServing(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := p.ident.Probe(ctx, &csi.ProbeRequest{})
		cancel()
		if err == nil && resp.GetReady().GetValue() {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("hydra-csi exited before serving: %v\n%s", p.cmd.ProcessState, tail(p.log, 8<<10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra-csi not serving after a minute (last probe: %v)\n%s", err, tail(p.log, 8<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process: no cleanup of any kind runs.
func (p *plugin) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// restart starts the process again on the same flags, root and socket.
func (p *plugin) restart(t testing.TB) {
	t.Helper()
	p.start(t)
	p.waitServing(t)
}

// stop ends the process with SIGTERM (SIGKILL after a while), if running.
func (p *plugin) stop(t testing.TB) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Errorf("hydra-csi did not stop on SIGTERM within 20s; killing it")
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// ctx is a context for one RPC.
func rpcCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mountCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
	}
}

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY},
	}
}

// createVolume is csi-provisioner's CreateVolume for a class with params.
func (p *plugin) createVolume(t testing.TB, name string, params map[string]string) *csi.Volume {
	t.Helper()
	resp, err := p.ctrl.CreateVolume(rpcCtx(t), &csi.CreateVolumeRequest{
		Name: name, Parameters: params, VolumeCapabilities: []*csi.VolumeCapability{mountCap()},
	})
	if err != nil {
		t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return resp.GetVolume()
}

// stage is kubelet's NodeStageVolume; the staging dir is made as kubelet does.
func (p *plugin) stage(t testing.TB, vol *csi.Volume) string {
	t.Helper()
	staging := filepath.Join(p.dir, "staging", vol.GetVolumeId())
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	_, err := p.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging, VolumeCapability: mountCap(), VolumeContext: vol.GetVolumeContext(),
	})
	if err != nil {
		t.Fatalf("NodeStageVolume %s: %v", vol.GetVolumeId(), err)
	}
	return staging
}

// pod is one pod's use of a volume: its identity and target path.
type pod struct{ uid, name, target string }

func (p *plugin) pod(name string) pod {
	return pod{uid: "uid-" + name, name: name, target: filepath.Join(p.dir, "pods", "uid-"+name, "volumes", "data", "mount")}
}

// podContext is the volume context plus what podInfoOnMount adds.
func podContext(vc map[string]string, pd pod) map[string]string {
	out := map[string]string{
		"csi.storage.k8s.io/pod.uid":       pd.uid,
		"csi.storage.k8s.io/pod.name":      pd.name,
		"csi.storage.k8s.io/pod.namespace": "default",
		"csi.storage.k8s.io/ephemeral":     "false",
	}
	for k, v := range vc {
		out[k] = v
	}
	return out
}

func publishReq(vol *csi.Volume, staging string, pd pod) *csi.NodePublishVolumeRequest {
	return &csi.NodePublishVolumeRequest{
		VolumeId: vol.GetVolumeId(), StagingTargetPath: staging, TargetPath: pd.target, Readonly: true,
		VolumeCapability: mountCap(), VolumeContext: podContext(vol.GetVolumeContext(), pd),
	}
}

// publish is kubelet's NodePublishVolume for pd.
func (p *plugin) publish(t testing.TB, vol *csi.Volume, staging string, pd pod) {
	t.Helper()
	if _, err := p.node.NodePublishVolume(rpcCtx(t), publishReq(vol, staging, pd)); err != nil {
		t.Fatalf("NodePublishVolume %s for %s: %v", vol.GetVolumeId(), pd.name, err)
	}
}

// unpublish is kubelet's NodeUnpublishVolume for pd.
func (p *plugin) unpublish(t testing.TB, volumeID string, pd pod) {
	t.Helper()
	_, err := p.node.NodeUnpublishVolume(rpcCtx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: volumeID, TargetPath: pd.target})
	if err != nil {
		t.Fatalf("NodeUnpublishVolume %s for %s: %v", volumeID, pd.name, err)
	}
}

// viewDir is where the driver keeps a pod's view below a cache root.
func viewDir(root, volumeID, podUID string) string {
	return filepath.Join(root, "views", volumeID, podUID)
}

// mountCount is how many mounts sit on path in this mount namespace (the
// plugin's: it runs as a child without a namespace of its own).
func mountCount(t testing.TB, path string) int {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 4 && unescapeMount(f[4]) == path {
			n++
		}
	}
	return n
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// readOnlyMount reports whether the top mount on path is read-only.
func readOnlyMount(t testing.TB, path string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Flags&unix.ST_RDONLY != 0
}

// wantFile checks that path holds want.
func wantFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %.40q, want %d bytes %.40q", path, len(got), got, len(want), want)
	}
}

// wantGone checks that path does not exist.
func wantGone(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone, Lstat says %v", path, err)
	}
}

// wantCode checks err's gRPC code and that its message names every one of
// the words.
func wantCode(t testing.TB, err error, code codes.Code, words ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, code)
	}
	for _, w := range words {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("message %q does not name %q", st.Message(), w)
		}
	}
}

// waitFor polls cond every 50 ms for up to limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountTmpfs mounts a tmpfs of size bytes at dir; unmountUnder of the
// plugin's dir (or this cleanup) takes it away.
func mountTmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

// unmountUnder lazily unmounts everything below dir, deepest first, so that
// t.TempDir's removal never walks into a view or a tmpfs.
func unmountUnder(dir string) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(unescapeMount(f[4]), dir+"/") {
			points = append(points, unescapeMount(f[4]))
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = unix.Unmount(p, unix.MNT_DETACH)
	}
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(raw)) > n {
		raw = raw[int64(len(raw))-n:]
	}
	return string(raw)
}

// pattern returns n bytes that differ by seed and by offset.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i/251)
	}
	return b
}
