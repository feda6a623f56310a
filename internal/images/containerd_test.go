package images

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hydra-csi/hydra/internal/testenv"
	"time"
)

// containerdInstall is what provides ctr and containerd on Debian.
const containerdInstall = "apt-get install -y containerd"

// TestContainerdImport imports every tarball into a real containerd, as
// the registry-less end-to-end test does (`ctr -n k8s.io images import`),
// and checks containerd lists each tag, unpacked, with the config digest
// Write reported: the import read manifest.json, the config and the layer,
// and unpacking checked the layer against rootfs.diff_ids.
func TestContainerdImport(t *testing.T) {
	results := writeAll(t, allSpecs(t))
	ctr := startContainerd(t)
	for _, r := range results {
		ctr.run(t, "images", "import", r.Path)
	}
	listed := map[string]string{} // ref -> manifest digest
	for line := range strings.Lines(ctr.run(t, "images", "check")) {
		// REF TYPE DIGEST STATUS (n/n) SIZE/SIZE UNPACKED
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "REF" {
			continue
		}
		if f[len(f)-1] != "true" || f[3] != "complete" {
			t.Errorf("%s: not complete and unpacked after import: %s", f[0], line)
		}
		listed[f[0]] = f[2]
	}
	for _, r := range results {
		digest, ok := listed[r.Ref]
		if !ok {
			t.Errorf("%s: not listed by ctr images check after importing %s", r.Ref, r.Path)
			continue
		}
		// containerd writes its own manifest on import; the config it
		// points at is the one we built.
		var m struct{ Config struct{ Digest string } }
		if err := json.Unmarshal([]byte(ctr.run(t, "content", "get", digest)), &m); err != nil {
			t.Fatalf("%s: manifest %s: %v", r.Ref, digest, err)
		}
		if m.Config.Digest != r.ID.String() {
			t.Errorf("%s: containerd's config %s, Write reported %s", r.Ref, m.Config.Digest, r.ID)
		}
	}
}

// containerd is a containerd started in a temp dir for one test.
type containerd struct{ sock string }

// run runs ctr against it in the k8s.io namespace (kubelet's).
func (c containerd) run(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"-a", c.sock, "-n", "k8s.io"}, args...)
	out, err := exec.Command("ctr", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startContainerd starts containerd with its root, state and sockets in a
// temp dir (the CRI plugin off: ctr does not need it), waits until it
// answers, and stops it at the end of the test. It fails, naming the apt
// command, where containerd is not installed.
func startContainerd(t *testing.T) containerd {
	t.Helper()
	testenv.RequireRoot(t, "containerd needs root")
	testenv.RequireHost(t, containerdInstall, "containerd", "ctr")
	dir := t.TempDir()
	c := containerd{sock: filepath.Join(dir, "containerd.sock")}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	log := logFile(filepath.Join(dir, "containerd.log"))
	f, err := os.Create(string(log))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // containerd holds its own descriptor
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Registered after TempDir, so it runs first: containerd is gone
	// before its directory is removed.
	t.Cleanup(func() { stopContainerd(t, cmd, exited, log) })
	waitForContainerd(t, c, exited, log)
	return c
}

// logFile is containerd's output, read when something fails.
type logFile string

func (l logFile) String() string {
	b, err := os.ReadFile(string(l))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func waitForContainerd(t *testing.T, c containerd, exited <-chan error, log logFile) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if exec.CommandContext(ctx, "ctr", "-a", c.sock, "version").Run() == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("containerd exited: %v\n%s", err, log)
		case <-ctx.Done():
			t.Fatalf("containerd did not answer on %s within a minute\n%s", c.sock, log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopContainerd sends SIGTERM and waits; SIGKILL after 30 s.
func stopContainerd(t *testing.T, cmd *exec.Cmd, exited <-chan error, log logFile) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Logf("containerd stopped: %v", err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("containerd ignored SIGTERM for 30 s (%v)\n%s", <-exited, log)
	}
}
