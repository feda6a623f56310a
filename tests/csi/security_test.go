package csi_test

import (
	"bytes"
	"crypto/rand"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"k8s.io/klog/v2"
)

// The keys of a volume's S3 secret, as a StorageClass's Secret holds them.
const (
	keyID     = "AWS_ACCESS_KEY_ID"
	keySecret = "AWS_SECRET_ACCESS_KEY"
	keyToken  = "AWS_SESSION_TOKEN"
)

// TestPerVolumeCredentials drives the real plugin with per-volume S3
// credentials in NodeStage/NodePublish secrets, against MinIO users: the
// node's own credentials read nothing, alice's (temporary ones, with a
// session token) read the channel's prefix, bob's another prefix. A
// download started for a volume uses its credentials; no volume gets a
// view of the release unless its own credentials read it, although it is
// in the node's store; a refusal is PermissionDenied naming the object.
// Then no secret value may appear in the plugin's whole log (at -v=5,
// where requests are logged) nor in the manager's.
func TestPerVolumeCredentials(t *testing.T) {
	w := newWorld(t)
	mgrLog := captureKlog(t)
	w.channel(t, "secret")
	data := pattern(7, 256<<10)
	w.publish(t, "secret", "v1", map[string][]byte{"a.bin": data, "sub/b.bin": pattern(8, 100)})

	nodeAK, nodeSK := w.minio.AddUser(t)
	aliceUserAK, aliceUserSK := w.minio.AddUser(t, "data/secret/")
	aliceAK, aliceSK, aliceToken := w.minio.AssumeRole(t, aliceUserAK, aliceUserSK)
	bobAK, bobSK := w.minio.AddUser(t, "data/other/")
	nodeToken := "node-token-" + rand.Text()
	p := startPlugin(t, w, pluginConfig{args: []string{"-v=5"}, env: []string{
		"AWS_ACCESS_KEY_ID=" + nodeAK, "AWS_SECRET_ACCESS_KEY=" + nodeSK, "HYDRA_TOKEN=" + nodeToken}})
	alice := map[string]string{keyID: aliceAK, keySecret: aliceSK, keyToken: aliceToken}
	bob := map[string]string{keyID: bobAK, keySecret: bobSK}
	const object = "s3://data/secret/v1/"

	stage := func(name string, secrets map[string]string) (*csi.Volume, string, error) {
		vol := p.createVolume(t, name, map[string]string{"channel": "secret"})
		staging := filepath.Join(p.dir, "staging", vol.GetVolumeId())
		if err := os.MkdirAll(staging, 0o750); err != nil {
			t.Fatal(err)
		}
		_, err := p.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: vol.GetVolumeId(),
			StagingTargetPath: staging, VolumeCapability: mountCap(), VolumeContext: vol.GetVolumeContext(), Secrets: secrets})
		return vol, staging, err
	}

	// The node's credentials cannot download it.
	_, _, err := stage("pvc-node", nil)
	wantCode(t, err, codes.PermissionDenied, object)
	// Alice's download uses her credentials.
	volA, stagingA, err := stage("pvc-alice", alice)
	if err != nil {
		t.Fatalf("NodeStageVolume with alice's secret: %v", err)
	}
	podA := p.pod("alice")
	p.publish(t, volA, stagingA, podA)
	wantFile(t, filepath.Join(podA.target, "current", dataset, "a.bin"), data)
	// Stored now: still refused to bob and to the node's credentials.
	_, _, err = stage("pvc-bob", bob)
	wantCode(t, err, codes.PermissionDenied, object)
	_, _, err = stage("pvc-node-again", nil)
	wantCode(t, err, codes.PermissionDenied, object)

	// A node-publish secret is what the pod reads with.
	podB := p.pod("bob-on-alices-stage")
	req := publishReq(volA, stagingA, podB)
	req.Secrets = bob
	_, err = p.node.NodePublishVolume(rpcCtx(t), req)
	wantCode(t, err, codes.PermissionDenied, object)
	if n := mountCount(t, podB.target); n != 0 {
		t.Errorf("%s: mounted %d times after a refused publish", podB.target, n)
	}
	// Inline volumes carry their node-publish secret only.
	inline := func(pd pod, secrets map[string]string) error {
		vc := podContext(map[string]string{"channel": "secret"}, pd)
		vc["csi.storage.k8s.io/ephemeral"] = "true"
		_, err := p.node.NodePublishVolume(rpcCtx(t), &csi.NodePublishVolumeRequest{VolumeId: "csi-inline-" + pd.name,
			TargetPath: pd.target, Readonly: true, VolumeCapability: mountCap(), VolumeContext: vc, Secrets: secrets})
		return err
	}
	wantCode(t, inline(p.pod("inline-bob"), bob), codes.PermissionDenied, object)
	if err := inline(p.pod("inline-alice"), alice); err != nil {
		t.Fatalf("inline volume with alice's secret: %v", err)
	}
	wantFile(t, filepath.Join(p.pod("inline-alice").target, "current", dataset, "a.bin"), data)
	// A bad secret names its key, never a value.
	_, _, err = stage("pvc-bad", map[string]string{keyID: aliceAK})
	wantCode(t, err, codes.InvalidArgument, "secrets."+keySecret)

	p.stop(t)
	pluginLog, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	// The grep below is only worth something if requests were logged.
	if !bytes.Contains(pluginLog, []byte("RPC request")) {
		t.Fatalf("the plugin log has no request: nothing was checked\n%s", tail(p.log, 4<<10))
	}
	if !strings.Contains(mgrLog.String(), "channel created") {
		t.Fatalf("the manager's log was not captured: %q", mgrLog.String())
	}
	secrets := map[string]string{"alice's user key": aliceUserAK, "alice's user secret": aliceUserSK,
		"alice's key": aliceAK, "alice's secret": aliceSK, "alice's session token": aliceToken,
		"bob's key": bobAK, "bob's secret": bobSK, "the node's S3 secret": nodeSK, "the node's token": nodeToken}
	for what, value := range secrets {
		if bytes.Contains(pluginLog, []byte(value)) {
			t.Errorf("%s appears in the plugin's log", what)
		}
		if strings.Contains(mgrLog.String(), value) {
			t.Errorf("%s appears in the manager's log", what)
		}
	}
}

// TestManagerAttributeKeepsTheToken: a `manager` attribute that names a
// server other than --manager is refused in CreateVolume, NodeStage and
// NodePublish of an inline volume, and that server never sees a request,
// let alone the plugin's token. With --allowed-manager it does see one,
// token included: the recorder works.
func TestManagerAttributeKeepsTheToken(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "idx")
	w.publish(t, "idx", "v1", map[string][]byte{"a.bin": pattern(1, 1000)})
	var (
		mu   sync.Mutex
		seen []string // Authorization headers
	)
	rogue := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.NotFound(rw, r)
	}))
	defer rogue.Close()
	received := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
	token := "node-token-" + rand.Text()
	p := startPlugin(t, w, pluginConfig{env: []string{"HYDRA_TOKEN=" + token}})

	_, err := p.ctrl.CreateVolume(rpcCtx(t), &csi.CreateVolumeRequest{Name: "pvc-rogue",
		Parameters: map[string]string{"channel": "idx", "manager": rogue.URL}, VolumeCapabilities: []*csi.VolumeCapability{mountCap()}})
	wantCode(t, err, codes.InvalidArgument, "parameters.manager")
	staging := filepath.Join(p.dir, "staging", "vol-rogue")
	_, err = p.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: "vol-rogue", StagingTargetPath: staging,
		VolumeCapability: mountCap(), VolumeContext: map[string]string{"channel": "idx", "manager": rogue.URL}})
	wantCode(t, err, codes.InvalidArgument, "volume_context.manager")
	pd := p.pod("rogue")
	inline := &csi.NodePublishVolumeRequest{VolumeId: "csi-rogue", TargetPath: pd.target, Readonly: true, VolumeCapability: mountCap(),
		VolumeContext: podContext(map[string]string{"channel": "idx", "manager": rogue.URL, "csi.storage.k8s.io/ephemeral": "true"}, pd)}
	inline.VolumeContext["csi.storage.k8s.io/ephemeral"] = "true"
	_, err = p.node.NodePublishVolume(rpcCtx(t), inline)
	wantCode(t, err, codes.InvalidArgument, "volume_context.manager")
	if got := received(); len(got) != 0 {
		t.Fatalf("the other server received %d requests (Authorization %q)", len(got), got)
	}

	// The control: allowed, the other server is asked (it answers 404).
	allowed := startPlugin(t, w, pluginConfig{args: []string{"--allowed-manager=" + rogue.URL}, env: []string{"HYDRA_TOKEN=" + token}})
	pd = allowed.pod("rogue")
	inline.TargetPath = pd.target
	_, err = allowed.node.NodePublishVolume(rpcCtx(t), inline)
	wantCode(t, err, codes.NotFound)
	got := received()
	if len(got) == 0 || got[0] != "Bearer "+token {
		t.Fatalf("an allowed manager received %q, want the token: the recorder does not work", got)
	}
	for _, pl := range []*plugin{p, allowed} {
		pl.stop(t)
		if raw, _ := os.ReadFile(pl.log); bytes.Contains(raw, []byte(token)) {
			t.Errorf("the token appears in the plugin's log %s", pl.log)
		}
	}
}

// captureKlog sends this process's klog output (the in-process manager's
// log) to a buffer at -v=5 until the test ends.
func captureKlog(t *testing.T) *syncBuffer {
	t.Helper()
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	buf := &syncBuffer{}
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "v": "5"} {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		_ = fs.Set("logtostderr", "true")
		_ = fs.Set("v", "0")
	})
	return buf
}

// syncBuffer is a bytes.Buffer safe for klog's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	klog.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPathsConfined: the real binary, told --kubelet-dir, refuses a
// publish outside it, through a symlink inside it that leads out, or into
// its own store, and mounts nothing; kubelet's own paths work (the other
// tests). pkg/driver's TestPathGuard tries every escape on every RPC.
func TestPathsConfined(t *testing.T) {
	w := newWorld(t)
	w.channel(t, "idx")
	w.publish(t, "idx", "v1", map[string][]byte{"a.bin": pattern(1, 1000)})
	p := startPlugin(t, w, pluginConfig{})
	vol := p.createVolume(t, "pvc-paths", map[string]string{"channel": "idx"})
	staging := p.stage(t, vol)
	outside := t.TempDir() // stands for /etc
	link := filepath.Join(p.dir, "pods", "uid-evil", "volumes")
	if err := os.MkdirAll(filepath.Dir(link), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"outside":        filepath.Join(outside, "mount"),
		"through a link": filepath.Join(link, "mount"),
		"../ traversal":  filepath.Join(p.dir, "pods") + "/../../" + filepath.Base(outside) + "/mount",
		"into the store": filepath.Join(p.root, "store", "idx"),
	} {
		req := publishReq(vol, staging, pod{uid: "uid-evil", name: "evil", target: target})
		_, err := p.node.NodePublishVolume(rpcCtx(t), req)
		wantCode(t, err, codes.InvalidArgument, "target_path")
		if n := mountCount(t, filepath.Clean(target)); n != 0 {
			t.Errorf("%s: %s mounted %d times", name, target, n)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the plugin wrote outside the kubelet dir: %v", entries)
	}
	_, err := p.node.NodeStageVolume(rpcCtx(t), &csi.NodeStageVolumeRequest{VolumeId: vol.GetVolumeId(),
		StagingTargetPath: outside, VolumeCapability: mountCap(), VolumeContext: vol.GetVolumeContext()})
	wantCode(t, err, codes.InvalidArgument, "staging_target_path")
	_, err = p.node.NodeGetVolumeStats(rpcCtx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: vol.GetVolumeId(), VolumePath: "/etc"})
	wantCode(t, err, codes.InvalidArgument, "volume_path")
}
