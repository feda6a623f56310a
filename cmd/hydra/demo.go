package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	csiapp "github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
	"github.com/hydra-csi/hydra/pkg/store"
)

func (a *app) demoCmd() *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "All-in-one local run: manager, CSI plugin and real CSI calls on embedded defaults",
		Long: "demo runs Hydra end to end on this machine, with no Kubernetes and no S3: a manager on a bbolt\n" +
			"file, sample data published from file://, hydra-csi --mode=all on a temporary socket, and the CSI\n" +
			"calls kubelet would make to stage and bind-mount a volume. It publishes a second release and shows\n" +
			"the pod's current flip. It needs root (bind mounts) and cleans up after itself.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.demo(cmd.Context(), keep) },
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory (for a look around)")
	return cmd
}

// demo is the whole run; each step prints what it does and what the pod sees.
func (a *app) demo(ctx context.Context, keep bool) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("demo bind-mounts a volume like kubelet would and must run as root")
	}
	dir, err := os.MkdirTemp("", "hydra-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if !keep {
			err = errors.Join(err, os.RemoveAll(dir))
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &demoRun{out: a.stdout, dir: dir}
	// The components' own logs go to a file, so the output shows the story.
	logPath := filepath.Join(dir, "hydra.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	klog.LogToStderr(false)
	klog.SetOutput(logFile)
	defer func() {
		klog.Flush()
		err = errors.Join(err, logFile.Close())
	}()
	d.say("components log to %s", logPath)

	d.step("start hydra-manager on bbolt (%s)", filepath.Join(dir, "state.db"))
	mgrURL, err := startDemoManager(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		return err
	}
	cl, err := client.New(mgrURL)
	if err != nil {
		return err
	}
	d.step("start hydra-csi --mode=all (CSI identity, controller, node and the node agent)")
	sock, stopPlugin, err := startDemoPlugin(ctx, dir, mgrURL)
	if err != nil {
		return err
	}
	defer stopPlugin()
	csi, err := dialCSI(sock)
	if err != nil {
		return err
	}
	defer csi.close()
	return d.run(ctx, cl, csi)
}

// demoRun carries the run's output and paths.
type demoRun struct {
	out io.Writer
	dir string
}

func (d *demoRun) step(format string, args ...any) {
	fmt.Fprintf(d.out, "\n== %s\n", fmt.Sprintf(format, args...))
}

func (d *demoRun) say(format string, args ...any) {
	fmt.Fprintf(d.out, "   %s\n", fmt.Sprintf(format, args...))
}

func (d *demoRun) run(ctx context.Context, cl *client.Client, csi *csiClient) error {
	if _, err := cl.CreateChannel(ctx, "demo", release.Config{}); err != nil {
		return err
	}
	v1, v2 := "2026-01-01T00-00-00", "2026-02-01T00-00-00"
	d.step("publish demo/%s from file://%s", v1, filepath.Join(d.dir, "data", v1))
	if err := d.publish(ctx, cl, v1); err != nil {
		return err
	}
	vol, err := csi.createVolume(ctx, "pvc-demo", "demo")
	if err != nil {
		return err
	}
	d.say("CreateVolume: id %s, context %v", vol.VolumeId, vol.VolumeContext)
	staging, target := filepath.Join(d.dir, "kubelet", "staging"), filepath.Join(d.dir, "kubelet", "pods", "web-0", "data")
	if err := csi.stage(ctx, vol, staging); err != nil {
		return err
	}
	d.say("NodeStageVolume: %s downloaded, verified and installed on the node", v1)
	if err := csi.publish(ctx, vol, staging, target); err != nil {
		return err
	}
	d.say("NodePublishVolume: view bind-mounted read-only at %s", target)
	d.show(target)
	held, err := os.Open(filepath.Join(target, "current", "model", "weights.bin"))
	if err != nil {
		return err
	}

	d.step("publish demo/%s; the node stages it, the manager flips the pod's view", v2)
	if err := d.publish(ctx, cl, v2); err != nil {
		return err
	}
	if err := waitFor(ctx, func() bool { return currentOf(target) == v2 }); err != nil {
		return fmt.Errorf("the view never flipped to %s: %w", v2, err)
	}
	d.show(target)
	first, err := io.ReadAll(held)
	if err != nil {
		return err
	}
	d.say("a file opened before the flip still reads the old release: %q", strings.TrimSpace(string(first)))
	// Kubelet unmounts only once the pod's containers are gone.
	if err := held.Close(); err != nil {
		return err
	}

	d.step("clean up as kubelet would: NodeUnpublishVolume, NodeUnstageVolume, DeleteVolume")
	return csi.cleanup(ctx, vol, staging, target)
}

// publish writes sample data for version and publishes it from file://.
func (d *demoRun) publish(ctx context.Context, cl *client.Client, version string) error {
	root := filepath.Join(d.dir, "data", version)
	files := map[string]string{
		"model/weights.bin":      "weights of " + version + "\n",
		"model/shards/part-0":    strings.Repeat("0", 4096),
		"config/settings.json":   fmt.Sprintf("{\"release\": %q}\n", version),
		"config/unchanged.txt":   "the same in every release: hardlinked, not copied\n",
		"model/shards/README.md": "sample shard\n",
	}
	for p, body := range files {
		// Sample data must be readable by the pod (world-readable, as any
		// dataset a node serves).
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil { //nolint:gosec // G301: see above
			return err
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil { //nolint:gosec // G306: see above
			return err
		}
	}
	lister := source.NewLocal(source.Options{})
	var datasets []release.Dataset
	for _, name := range []string{"model", "config"} {
		src, err := release.ParseSource("file://" + filepath.Join(root, name) + "/")
		if err != nil {
			return err
		}
		m, err := lister.List(ctx, src)
		if err != nil {
			return err
		}
		datasets = append(datasets, release.Dataset{Name: name, Source: src.String(), Manifest: m})
	}
	resp, err := cl.Publish(ctx, "demo", api.PublishRequest{Version: version, Datasets: datasets})
	if err == nil {
		d.say("published %s (%d files); head is %s", version, resp.Release.Files, resp.Head)
	}
	return err
}

// show prints what the pod sees at its mount.
func (d *demoRun) show(target string) {
	d.say("the pod sees %s/current -> %s", filepath.Base(target), currentLink(target))
	_ = filepath.WalkDir(filepath.Join(target, "current")+"/", func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(target, p)
		body, _ := os.ReadFile(p) //nolint:gosec // G122: the demo reads its own temporary tree
		line := strings.TrimSpace(string(body))
		if len(line) > 48 {
			line = line[:48] + "..."
		}
		d.say("  %-38s %q", rel, line)
		return nil
	})
}

func currentLink(target string) string {
	l, _ := os.Readlink(filepath.Join(target, "current"))
	return l
}

func currentOf(target string) string { return filepath.Base(currentLink(target)) }

func waitFor(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// startDemoManager serves a manager (no auth: it listens on loopback for
// this run only) on a bbolt file and returns its URL.
func startDemoManager(ctx context.Context, path string) (string, error) {
	b, err := store.OpenBolt(path)
	if err != nil {
		return "", err
	}
	st := store.New(b)
	reg := prometheus.NewRegistry()
	m, err := manager.New(manager.Options{Store: st, Registerer: reg})
	if err != nil {
		return "", err
	}
	h, err := httpapi.New(m, httpapi.Options{Registry: reg})
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = m.Run(ctx) }()
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		m.Shutdown()
		_ = srv.Close()
		_ = st.Close()
	}()
	url := "http://" + ln.Addr().String()
	return url, waitFor(ctx, func() bool { return m.Ready(ctx) == nil })
}

// startDemoPlugin runs hydra-csi --mode=all in-process.
func startDemoPlugin(ctx context.Context, dir, mgrURL string) (string, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args := []string{"--mode=all", "--endpoint", "unix://" + filepath.Join(dir, "csi", "csi.sock"),
		"--node-id", "demo-node", "--cache-root", filepath.Join(dir, "cache"), "--manager", mgrURL,
		"--kubelet-dir", filepath.Join(dir, "kubelet")}
	go func() { done <- csiapp.Run(ctx, args, io.Discard, ready) }()
	select {
	case sock := <-ready:
		stop := func() {
			cancel()
			if err := <-done; err != nil {
				klog.ErrorS(err, "hydra-csi stopped with an error")
			}
		}
		return sock, stop, nil
	case err := <-done:
		cancel()
		return "", nil, fmt.Errorf("hydra-csi: %w", err)
	}
}
