//go:build linux

package testenv

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The single-node cluster of the end-to-end test lives on a host-only
// address: a bridge with no ports carries ClusterAddr, every control-plane
// component and the host-side peers (MinIO, Consul) bind it, and pods reach
// it through their default route, as they would reach a node's address.
// Nothing listens on the machine's real interfaces.
const (
	// ClusterAddr is the node's address and the API server's.
	ClusterAddr = "10.250.250.1"
	// ClusterNode is the node's name.
	ClusterNode     = "hydra-e2e"
	clusterBridge   = "hydra-e2e0"
	clusterPodCIDR  = "10.244.0.0/24"
	clusterPodRange = "10.244.0.0/16"
	clusterSvcRange = "10.96.0.0/16"
	clusterSvcAPI   = "10.96.0.1"
	// clusterUpTimeout bounds the wait for a component (and the node) to be
	// ready; ~5 s on 2 cores when warm.
	clusterUpTimeout = 2 * time.Minute
	// clusterDrainTimeout bounds the wait for kubelet to stop every pod.
	clusterDrainTimeout = 3 * time.Minute
)

// ClusterPackages are the Debian packages the cluster needs from the host.
const ClusterPackages = "containerd runc iptables containernetworking-plugins busybox-static"

// Cluster is a real single-node Kubernetes for one test, put together as
// docs/development.md ("The local cluster for e2e") describes: containerd and runc, etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
// kube-proxy in iptables mode, the bridge CNI plugin. It needs root.
type Cluster struct {
	// Kubeconfig names the API server at ClusterAddr with an admin token.
	Kubeconfig string
	// Client is a clientset on Kubeconfig.
	Client kubernetes.Interface
	// KubeletRoot is kubelet's --root-dir (not /var/lib/kubelet, so that
	// a run leaves nothing in the host's paths), below Dir.
	KubeletRoot string
	// Dir holds every component's state and log; it is a shared mount, so
	// hostPath volumes below it may use Bidirectional propagation.
	Dir string
	// ContainerdSock is containerd's gRPC socket, for ctr.
	ContainerdSock string
	// LastNamespaces are deleted at teardown only once every other
	// namespace's pods are gone: the CSI driver's, which must outlive the
	// pods whose volumes it unmounts.
	LastNamespaces []string

	t     testing.TB
	procs []*process // in start order
	// iptablesBefore is iptables-save (without counters) before the start.
	iptablesBefore string
	forwardBefore  string
	// hostDirs are the host paths kubelet writes whatever its root
	// (/var/log/containers, /var/lib/kubelet/device-plugins), with
	// whether each existed before the run.
	hostDirs map[string]bool
}

// kubeletHostDirs are the paths kubelet hard-codes outside --root-dir.
var kubeletHostDirs = []string{"/var/log/containers", "/var/lib/kubelet"}

// StartCluster brings the cluster up, imports the docker-archive image
// tarballs in images (the pause image, localhost/pause:e2e, among them),
// waits until the node is Ready, and tears everything down in t.Cleanup.
func StartCluster(t testing.TB, images ...string) *Cluster {
	t.Helper()
	RequireRoot(t, "the end-to-end cluster mounts, sets up networks and runs containers")
	RequireHost(t, "apt-get install -y "+ClusterPackages, "containerd", "ctr", "runc", "iptables", "iptables-save", "ip6tables-save", "ip")
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Fatalf("testenv: no CNI plugins in /usr/lib/cni: apt-get install -y %s", ClusterPackages)
	}
	if ifaceExists(clusterBridge) {
		t.Fatalf("testenv: interface %s exists: another end-to-end run is going on, or one died "+
			"without cleaning up (ip link del %s)", clusterBridge, clusterBridge)
	}
	bins := Tools(t, "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")
	dir, err := os.MkdirTemp("", "hydra-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Dir: dir, KubeletRoot: filepath.Join(dir, "kubelet"),
		ContainerdSock: filepath.Join(dir, "containerd", "containerd.sock")}
	c.iptablesBefore = iptablesRules(t)
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		c.forwardBefore = strings.TrimSpace(string(b))
	}
	c.hostDirs = map[string]bool{}
	for _, d := range kubeletHostDirs {
		c.hostDirs[d] = fileExists(d)
	}
	t.Cleanup(c.teardown)

	c.shareDir()
	c.network()
	c.startContainerd()
	for _, img := range images {
		c.ImportImage(img)
	}
	token := randomHex(t, 16)
	pki := c.writePKI(token)
	etcd := c.start("etcd", bins["etcd"], "--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:22379", "--advertise-client-urls=http://127.0.0.1:22379",
		"--listen-peer-urls=http://127.0.0.1:22380", "--initial-advertise-peer-urls=http://127.0.0.1:22380",
		"--initial-cluster=e2e=http://127.0.0.1:22380", "--log-level=warn", "--unsafe-no-fsync")
	c.waitHTTP(etcd, http.DefaultClient, "http://127.0.0.1:22379/health", "")
	api := c.start("kube-apiserver", bins["kube-apiserver"], "--etcd-servers=http://127.0.0.1:22379",
		"--bind-address="+ClusterAddr, "--advertise-address="+ClusterAddr, "--secure-port=26443",
		"--tls-cert-file="+pki.certFile, "--tls-private-key-file="+pki.keyFile, "--client-ca-file="+pki.caFile,
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc", "--token-auth-file="+pki.tokens,
		"--authorization-mode=Node,RBAC", "--service-cluster-ip-range="+clusterSvcRange,
		"--allow-privileged=true", "--kubelet-preferred-address-types=InternalIP,Hostname",
		"--cert-dir="+filepath.Join(dir, "apiserver"))
	caHTTP, err := caClient(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	c.waitHTTP(api, caHTTP, "https://"+ClusterAddr+":26443/readyz", token)
	c.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, "https://"+ClusterAddr+":26443", pki.caFile, token); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	kc := "--kubeconfig=" + c.Kubeconfig
	c.start("kube-controller-manager", bins["kube-controller-manager"], kc,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caFile,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=20257", "--controllers=*",
		"--cluster-cidr="+clusterPodRange, "--service-cluster-ip-range="+clusterSvcRange)
	c.start("kube-scheduler", bins["kube-scheduler"], kc,
		"--authentication-kubeconfig="+c.Kubeconfig, "--authorization-kubeconfig="+c.Kubeconfig,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=20259")
	c.startKubelet(bins["kubelet"])
	c.start("kube-proxy", bins["kube-proxy"], kc, "--hostname-override="+ClusterNode,
		"--cluster-cidr="+clusterPodRange, "--proxy-mode=iptables", "--conntrack-max-per-core=0",
		"--metrics-bind-address=127.0.0.1:20249", "--healthz-bind-address=127.0.0.1:20256")
	c.waitNodeReady()
	return c
}

// network puts ClusterAddr on a bridge of its own, writes the CNI config and
// turns on forwarding.
func (c *Cluster) network() {
	t := c.t
	for _, args := range [][]string{
		{"link", "add", clusterBridge, "type", "bridge"},
		{"addr", "add", ClusterAddr + "/32", "dev", clusterBridge},
		{"link", "set", clusterBridge, "up"},
	} {
		run(t, "ip", args...)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o600); err != nil {
		t.Fatalf("testenv: turn on ip_forward: %v", err)
	}
	conf := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "hydra-e2e", "plugins": [
 {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}],
           "dataDir": %q}},
 {"type": "portmap", "capabilities": {"portMappings": true}}]}
`, clusterPodCIDR, filepath.Join(c.Dir, "cni", "ipam"))
	writeFile(t, filepath.Join(c.Dir, "cni", "net.d", "10-bridge.conflist"), conf)
}

// startContainerd runs a containerd of the cluster's own, with the CRI
// settings this machine needs (restrict_oom_score_adj: no CAP_SYS_RESOURCE).
func (c *Cluster) startContainerd() {
	d := filepath.Join(c.Dir, "containerd")
	conf := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = "%[3]s.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:e2e"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = %[4]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[5]q
`, filepath.Join(d, "root"), filepath.Join(d, "state"), c.ContainerdSock, filepath.Join(d, "runc"),
		filepath.Join(c.Dir, "cni", "net.d"))
	writeFile(c.t, filepath.Join(d, "config.toml"), conf)
	p := c.start("containerd", "containerd", "--config="+filepath.Join(d, "config.toml"))
	deadline := time.Now().Add(clusterUpTimeout)
	for {
		if out, err := exec.Command("ctr", "-a", c.ContainerdSock, "version").CombinedOutput(); err == nil {
			return
		} else if time.Now().After(deadline) {
			c.t.Fatalf("testenv: containerd not serving after %v: %v\n%s\n%s", clusterUpTimeout, err, out, p.logTail())
		}
		select {
		case <-p.exited:
			c.t.Fatalf("testenv: containerd exited:\n%s", p.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ImportImage imports a docker-archive tarball into containerd's k8s.io
// namespace, where kubelet finds it (pods use imagePullPolicy Never or
// IfNotPresent: there is no registry).
func (c *Cluster) ImportImage(tarball string) {
	c.t.Helper()
	run(c.t, "ctr", "-a", c.ContainerdSock, "-n", "k8s.io", "images", "import", tarball)
}

// clusterPKI are the API server's files, as in kubePKI, for ClusterAddr
// and the in-cluster names of the kubernetes Service.
func (c *Cluster) writePKI(token string) kubePKI {
	t := c.t
	dir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := kubePKI{
		caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "apiserver.crt"),
		keyFile: filepath.Join(dir, "apiserver.key"), saKey: filepath.Join(dir, "sa.key"),
		saPub: filepath.Join(dir, "sa.pub"), tokens: filepath.Join(dir, "tokens.csv"),
	}
	caKey, caCert, caDER := newCert(t, "hydra-e2e-ca", nil, nil)
	servingKey, _, servingDER := newCert(t, "kube-apiserver", caCert, caKey,
		ClusterAddr, clusterSvcAPI, "127.0.0.1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	saPub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		p.caFile:   pemBlock("CERTIFICATE", caDER),
		p.certFile: pemBlock("CERTIFICATE", servingDER),
		p.keyFile:  pemKey(t, servingKey),
		p.saKey:    pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)),
		p.saPub:    pemBlock("PUBLIC KEY", saPub),
		p.tokens:   []byte(token + `,admin,admin,"system:masters"` + "\n"),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// shareDir makes Dir a shared mount: mounts are private on this machine,
// and Bidirectional propagation (the CSI node plugin's, on kubelet's root
// and on its store, both below Dir) needs a shared one.
func (c *Cluster) shareDir() {
	if err := unix.Mount(c.Dir, c.Dir, "", unix.MS_BIND, ""); err != nil {
		c.t.Fatalf("testenv: bind %s: %v", c.Dir, err)
	}
	if err := unix.Mount("", c.Dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		c.t.Fatalf("testenv: make %s rshared: %v", c.Dir, err)
	}
}

// startKubelet writes kubelet's configuration and starts it.
func (c *Cluster) startKubelet(bin string) {
	t := c.t
	if err := os.MkdirAll(c.KubeletRoot, 0o750); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
address: %s
port: 20250
readOnlyPort: 0
healthzPort: 20248
healthzBindAddress: 127.0.0.1
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%%", imagefs.available: "1%%", nodefs.inodesFree: "1%%"}
serializeImagePulls: false
podLogsDir: %s
`, c.ContainerdSock, ClusterAddr, filepath.Join(c.Dir, "pod-logs"))
	path := filepath.Join(c.Dir, "kubelet-config.yaml")
	writeFile(t, path, conf)
	c.start("kubelet", bin, "--config="+path, "--kubeconfig="+c.Kubeconfig, "--root-dir="+c.KubeletRoot,
		"--hostname-override="+ClusterNode, "--node-ip="+ClusterAddr, "--cert-dir="+filepath.Join(c.Dir, "kubelet-pki"))
}

// waitNodeReady waits until the node reports Ready (kubelet registered,
// the CNI config found) and the default ServiceAccount exists.
func (c *Cluster) waitNodeReady() {
	c.WaitFor(clusterUpTimeout, "node "+ClusterNode+" Ready", func(ctx context.Context) (bool, error) {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, ClusterNode, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not registered yet
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
				return err == nil, nil
			}
		}
		return false, nil
	})
}

// WaitFor polls cond every 250 ms until it is true, fails the test when it
// returns an error or timeout passes. what names the wait in the failure.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, err := cond(ctx)
		if err != nil {
			c.t.Fatalf("testenv: waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("testenv: %s: not after %v", what, timeout)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// start launches a component with its log in Dir; a component that exits
// fails the wait that needs it, and its log is shown when the test fails.
func (c *Cluster) start(name, bin string, args ...string) *process {
	c.t.Helper()
	p := &process{name: name, logPath: filepath.Join(c.Dir, name+".log")}
	if err := p.start(bin, args...); err != nil {
		c.t.Fatal(err)
	}
	c.procs = append(c.procs, p)
	return p
}

func (c *Cluster) waitHTTP(p *process, client *http.Client, url, token string) {
	c.t.Helper()
	if err := p.waitReady(client, url, token); err != nil {
		c.t.Fatalf("%v\n%s log:\n%s", err, p.name, p.logTail())
	}
}

// Mounts lists the mount points below Dir (kubelet's root among them).
func (c *Cluster) Mounts() []string { return leftMounts(c.Dir) }

// LogTail returns the last lines of a component's log ("kubelet", ...).
func (c *Cluster) LogTail(name string) string {
	for _, p := range c.procs {
		if p.name == name {
			return p.logTail()
		}
	}
	return "(no such component: " + name + ")"
}

// teardown stops the cluster gracefully, as K8S-LOCAL.md says it must be,
// or CNI leaves iptables chains and network namespaces behind: pods are
// deleted and kubelet stops them (and unmounts their volumes) first, then
// the components stop in reverse order, kube-proxy cleans its rules, and
// whatever is still mounted below Dir is unmounted. Then it checks that
// nothing is left: no mount, no process and no iptables rule of the run.
func (c *Cluster) teardown() {
	t := c.t
	if c.Client != nil {
		c.deleteAllPods()
	}
	if t.Failed() {
		for _, name := range []string{"kubelet", "containerd"} {
			t.Logf("testenv: %s log (last lines of %s):\n%s", name, filepath.Join(c.Dir, name+".log"), c.LogTail(name))
		}
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		if c.procs[i].name == "containerd" {
			c.stopContainers()
		}
		c.procs[i].stop()
	}
	if bin := filepath.Join(ToolsDir(), "kube-proxy"); fileExists(bin) {
		if out, err := exec.Command(bin, "--cleanup").CombinedOutput(); err != nil {
			t.Errorf("testenv: kube-proxy --cleanup: %v\n%s", err, out)
		}
	}
	c.killShims()
	unmountBelow(t, c.Dir)
	for _, link := range []string{"cni0", clusterBridge} {
		if ifaceExists(link) {
			if out, err := exec.Command("ip", "link", "del", link).CombinedOutput(); err != nil {
				t.Errorf("testenv: ip link del %s: %v\n%s", link, err, out)
			}
		}
	}
	c.removeNewChains()
	c.removeHostDirs()
	if c.forwardBefore != "" {
		_ = os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte(c.forwardBefore), 0o600)
	}
	if left := leftMounts(c.Dir); len(left) > 0 {
		t.Errorf("testenv: mounts left below %s after teardown:\n%s", c.Dir, strings.Join(left, "\n"))
	}
	if left := processesMentioning(c.Dir); len(left) > 0 {
		t.Errorf("testenv: processes left after teardown:\n%s", strings.Join(left, "\n"))
	}
	if after := iptablesRules(t); after != c.iptablesBefore {
		t.Errorf("testenv: iptables rules changed by the run:\n%s", diffLines(c.iptablesBefore, after))
	}
	if !t.Failed() {
		if err := os.RemoveAll(c.Dir); err != nil {
			t.Errorf("testenv: remove %s: %v", c.Dir, err)
		}
	} else {
		t.Logf("testenv: cluster state and logs kept in %s", c.Dir)
	}
}

// removeHostDirs removes kubelet's container log links that point below
// Dir, and the host directories kubelet made that were not there before.
func (c *Cluster) removeHostDirs() {
	if ents, err := os.ReadDir("/var/log/containers"); err == nil {
		for _, e := range ents {
			p := filepath.Join("/var/log/containers", e.Name())
			if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, c.Dir+"/") {
				_ = os.Remove(p)
			}
		}
	}
	for d, existed := range c.hostDirs {
		if !existed {
			if err := os.RemoveAll(d); err != nil {
				c.t.Errorf("testenv: remove %s: %v", d, err)
			}
		}
	}
}

// deleteAllPods deletes every namespace but the system ones, those of
// LastNamespaces after the others, and then every pod left, waiting each
// time until kubelet has stopped them.
func (c *Cluster) deleteAllPods() {
	ctx, cancel := context.WithTimeout(context.Background(), clusterDrainTimeout)
	defer cancel()
	system := []string{"default", "kube-system", "kube-public", "kube-node-lease"}
	first := func(ns string) bool { return !slices.Contains(c.LastNamespaces, ns) }
	last := func(string) bool { return true }
	for _, phase := range []func(string) bool{first, last} {
		if nss, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err == nil {
			for _, ns := range nss.Items {
				if !slices.Contains(system, ns.Name) && phase(ns.Name) {
					_ = c.Client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
				}
			}
		}
		if !c.waitPodsGone(ctx, phase) {
			return
		}
	}
}

// waitPodsGone deletes the pods of the namespaces sel picks and waits
// until they are gone.
func (c *Cluster) waitPodsGone(ctx context.Context, sel func(string) bool) bool {
	cs := c.Client
	for {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			c.t.Errorf("testenv: list pods at teardown: %v", err)
			return false
		}
		var left []string
		for _, p := range pods.Items {
			if !sel(p.Namespace) {
				continue
			}
			left = append(left, p.Namespace+"/"+p.Name)
			if p.DeletionTimestamp == nil {
				_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			}
		}
		if len(left) == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			c.t.Errorf("testenv: pods still there %v after teardown began: %v", clusterDrainTimeout, left)
			return false
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stopContainers kills what kubelet left running (after a failed drain),
// so that containerd's shims exit and unmount their rootfs.
func (c *Cluster) stopContainers() {
	ctr := func(args ...string) ([]byte, error) {
		return exec.Command("ctr", append([]string{"-a", c.ContainerdSock, "-n", "k8s.io"}, args...)...).CombinedOutput()
	}
	out, err := ctr("tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(string(out)) {
		_, _ = ctr("tasks", "kill", "-s", "SIGKILL", id)
		_, _ = ctr("tasks", "delete", "-f", id)
		_, _ = ctr("containers", "delete", id)
	}
}

// killShims kills containerd-shim processes of this cluster, which outlive
// containerd by design.
func (c *Cluster) killShims() {
	for _, pid := range pidsMentioning(c.Dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(pidsMentioning(c.Dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// removeNewChains deletes the chains kubelet (KUBE-FIREWALL, canaries),
// kube-proxy and the CNI plugins (CNI-*) created and keep, in IPv4 and
// IPv6, when they were not there before the run, with the rules that jump
// to them.
func (c *Cluster) removeNewChains() {
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"nat", "filter", "mangle"} {
			out, err := exec.Command(fam+"-save", "-t", table).Output()
			if err != nil {
				continue
			}
			var chains []string
			for line := range strings.SplitSeq(string(out), "\n") {
				if name, ok := strings.CutPrefix(line, ":"); ok {
					name = strings.Fields(name)[0]
					if (strings.HasPrefix(name, "CNI-") || strings.HasPrefix(name, "KUBE-")) &&
						!strings.Contains(c.iptablesBefore, fam+" "+table+" :"+name+" ") {
						chains = append(chains, name)
					}
				}
			}
			for line := range strings.SplitSeq(string(out), "\n") {
				rule, ok := strings.CutPrefix(line, "-A ")
				if !ok {
					continue
				}
				for _, ch := range chains {
					if strings.Contains(rule+" ", "-j "+ch+" ") && !strings.HasPrefix(rule, ch+" ") {
						// The rule as iptables-save wrote it, quotes and all.
						_ = exec.Command("sh", "-c", fam+" -t "+table+" -D "+rule).Run()
					}
				}
			}
			for _, op := range []string{"-F", "-X"} {
				for _, ch := range chains {
					_ = exec.Command(fam, "-t", table, op, ch).Run()
				}
			}
		}
	}
}

// iptablesRules lists, for IPv4 and IPv6, the rules and user-defined
// chains ("iptables nat -A ...", "iptables nat :CHAIN ") without counters:
// built-in chains and table headers come and go as tables are loaded.
func iptablesRules(t testing.TB) string {
	var keep []string
	for _, fam := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(fam + "-save").Output()
		if err != nil {
			t.Fatalf("testenv: %s-save: %v", fam, err)
		}
		table := ""
		for line := range strings.SplitSeq(string(out), "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				table = line[1:]
			case strings.HasPrefix(line, ":"):
				if f := strings.Fields(line); len(f) >= 2 && f[1] == "-" { // user-defined
					keep = append(keep, fam+" "+table+" "+f[0]+" ")
				}
			case strings.HasPrefix(line, "-A "):
				keep = append(keep, fam+" "+table+" "+line)
			}
		}
	}
	return strings.Join(keep, "\n")
}

func diffLines(before, after string) string {
	b, a := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "+ "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "- "+l)
		}
	}
	return strings.Join(out, "\n")
}

// unmountBelow unmounts every mount point below dir, deepest first.
func unmountBelow(t testing.TB, dir string) {
	for range 3 { // a lazily unmounted parent can reveal nothing new; a few passes suffice
		left := leftMounts(dir)
		if len(left) == 0 {
			return
		}
		slices.SortFunc(left, func(a, b string) int { return len(b) - len(a) })
		for _, m := range left {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				t.Logf("testenv: unmount %s: %v", m, err)
			}
		}
	}
}

// leftMounts lists the mount points at or below dir.
func leftMounts(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// pidsMentioning lists processes whose command line contains s.
func pidsMentioning(s string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func processesMentioning(s string) []string {
	var out []string
	for _, pid := range pidsMentioning(s) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

func ifaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
