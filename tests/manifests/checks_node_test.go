package manifests_test

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
)

// checkNode: the node DaemonSet as kubelet and the plugin need it.
func checkNode(o objects) error {
	ds, err := typed[appsv1.DaemonSet](o, "DaemonSet", nodeDS)
	if err != nil {
		return err
	}
	spec := &ds.Spec.Template.Spec
	c := container(spec, csiContainer)
	if c == nil {
		return fmt.Errorf("DaemonSet %s: no container %s", nodeDS, csiContainer)
	}
	errs := []error{
		nodeScheduling(ds),
		nodePrivileges(spec),
		nodeEnv(o, ds.Namespace, spec, c),
		nodePaths(o, ds.Namespace, spec, c),
		nodeLiveness(spec, c),
		nodePeer(o, ds.Namespace, spec, c),
	}
	return errors.Join(errs...)
}

// peerPort is where the node plugin serves peers (docs/install.md).
const peerPort = 7470

// nodePeer: peer distribution is on, served on the container port
// "peer" that the node's IP forwards to (hostPort: the pod is not on the
// host network), and advertised at that IP from the downward API.
func nodePeer(o objects, ns string, spec *corev1.PodSpec, c *corev1.Container) error {
	env, _ := envValues(o, ns, c) // nodeEnv reports its errors
	var errs []error
	// A failed parse is nodeEnv's to report.
	if opts, err := csiOptions(c.Args, env); err == nil && opts.PeerListen != fmt.Sprintf(":%d", peerPort) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --peer-listen %q: want :%d (peer distribution on by default)", nodeDS, opts.PeerListen, peerPort))
	}
	if a, _ := flagValue(c.Args, "peer-advertise"); a != fmt.Sprintf("$(HYDRA_NODE_IP):%d", peerPort) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --peer-advertise %q: want $(HYDRA_NODE_IP):%d, the node's IP and the hostPort", nodeDS, a, peerPort))
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "HYDRA_NODE_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.hostIP"
	}) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: env HYDRA_NODE_IP must come from the downward API's status.hostIP", nodeDS))
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == "peer" && p.ContainerPort == peerPort && p.HostPort == peerPort && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP)
	}) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: %s needs port peer, containerPort and hostPort %d/TCP: other nodes dial the node's IP", nodeDS, csiContainer, peerPort))
	}
	if spec.HostNetwork {
		errs = append(errs, fmt.Errorf("DaemonSet %s: hostNetwork: the plugin needs none, and hostPort %d is how peers reach it", nodeDS, peerPort))
	}
	return errors.Join(errs...)
}

// nodeScheduling: the plugin runs on every node, first.
func nodeScheduling(ds *appsv1.DaemonSet) error {
	spec := &ds.Spec.Template.Spec
	var errs []error
	if spec.PriorityClassName != "system-node-critical" {
		errs = append(errs, fmt.Errorf("DaemonSet %s: priorityClassName %q: want system-node-critical (pods cannot start on a node without it)", nodeDS, spec.PriorityClassName))
	}
	if !slices.ContainsFunc(spec.Tolerations, func(t corev1.Toleration) bool {
		return t.Key == "" && t.Operator == corev1.TolerationOpExists && t.Effect == ""
	}) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: needs a toleration {operator: Exists} to run on tainted nodes", nodeDS))
	}
	us := ds.Spec.UpdateStrategy
	if us.Type != appsv1.RollingUpdateDaemonSetStrategyType || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable == nil ||
		us.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		errs = append(errs, fmt.Errorf("DaemonSet %s: updateStrategy must be RollingUpdate with maxUnavailable 1", nodeDS))
	}
	return errors.Join(errs...)
}

// nodePrivileges: hydra-csi mounts, so it is privileged; nothing else is.
func nodePrivileges(spec *corev1.PodSpec) error {
	var errs []error
	for _, c := range allContainers(spec) {
		priv := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
		switch {
		case c.Name == csiContainer && !priv:
			errs = append(errs, fmt.Errorf("DaemonSet %s: container %s must be privileged: it mounts, with Bidirectional propagation", nodeDS, c.Name))
		case c.Name != csiContainer && priv:
			errs = append(errs, fmt.Errorf("DaemonSet %s: container %s is privileged: only %s may be", nodeDS, c.Name, csiContainer))
		}
	}
	return errors.Join(errs...)
}

// nodeEnv: the node name from the downward API, the manager and its
// token, and the optional S3 settings.
func nodeEnv(o objects, ns string, spec *corev1.PodSpec, c *corev1.Container) error {
	var errs []error
	byName := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		byName[e.Name] = e
	}
	if e := byName["NODE_NAME"]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		errs = append(errs, fmt.Errorf("DaemonSet %s: env NODE_NAME must come from the downward API's spec.nodeName (the node agent's identity)", nodeDS))
	}
	if e := byName["HYDRA_MANAGER"]; e.ValueFrom == nil || e.ValueFrom.ConfigMapKeyRef == nil ||
		!strings.HasPrefix(e.ValueFrom.ConfigMapKeyRef.Name, "hydra-config") || e.ValueFrom.ConfigMapKeyRef.Key != "manager-url" {
		errs = append(errs, fmt.Errorf("DaemonSet %s: env HYDRA_MANAGER must come from ConfigMap hydra-config, key manager-url", nodeDS))
	}
	errs = append(errs, nodeTokenFile(spec, c, byName))
	if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
		return e.SecretRef != nil && strings.HasPrefix(e.SecretRef.Name, "hydra-s3") && e.SecretRef.Optional != nil && *e.SecretRef.Optional
	}) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: S3 settings must come from envFrom Secret hydra-s3, optional (instance roles need none)", nodeDS))
	}
	env, err := envValues(o, ns, c)
	if err != nil {
		errs = append(errs, fmt.Errorf("DaemonSet %s: %w", nodeDS, err))
	}
	if _, err := csiOptions(c.Args, env); err != nil {
		errs = append(errs, fmt.Errorf("DaemonSet %s: %w", nodeDS, err))
	}
	return errors.Join(errs...)
}

// nodeTokenDir is where the node plugin finds Secret hydra-node-tokens.
const nodeTokenDir = "/etc/hydra/node-tokens/"

// nodeTokenFile: the plugin's manager token is a file of Secret
// hydra-node-tokens (--token-file=$(HYDRA_NODE_TOKEN_FILE)), not a token
// shared through HYDRA_TOKEN.
func nodeTokenFile(spec *corev1.PodSpec, c *corev1.Container, env map[string]corev1.EnvVar) error {
	var errs []error
	if _, ok := env["HYDRA_TOKEN"]; ok {
		errs = append(errs, fmt.Errorf("DaemonSet %s: env HYDRA_TOKEN: the node's token must be its own file of Secret hydra-node-tokens, not one shared by every node", nodeDS))
	}
	if !slices.Contains(c.Args, "--token-file=$(HYDRA_NODE_TOKEN_FILE)") {
		errs = append(errs, fmt.Errorf("DaemonSet %s: hydra-csi needs --token-file=$(HYDRA_NODE_TOKEN_FILE)", nodeDS))
	}
	if f := env["HYDRA_NODE_TOKEN_FILE"].Value; !strings.HasPrefix(f, nodeTokenDir) {
		errs = append(errs, fmt.Errorf("DaemonSet %s: env HYDRA_NODE_TOKEN_FILE %q: want a file under %s", nodeDS, f, nodeTokenDir))
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && path.Clean(m.MountPath)+"/" == nodeTokenDir && v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, "hydra-node-tokens") {
				mounted = true
			}
		}
	}
	if !mounted {
		errs = append(errs, fmt.Errorf("DaemonSet %s: Secret hydra-node-tokens must be mounted at %s", nodeDS, nodeTokenDir))
	}
	return errors.Join(errs...)
}

// checkNodeTokenBound: outside the dev overlay each node reads the key
// named after it, a token the manager binds to that node, so that a node
// cannot report for, and protect releases as, any other.
func checkNodeTokenBound(o objects) error {
	ds, err := typed[appsv1.DaemonSet](o, "DaemonSet", nodeDS)
	if err != nil {
		return err
	}
	c := container(&ds.Spec.Template.Spec, csiContainer)
	for _, e := range c.Env {
		if e.Name == "HYDRA_NODE_TOKEN_FILE" && e.Value == nodeTokenDir+"$(NODE_NAME)" {
			return nil
		}
	}
	return fmt.Errorf("DaemonSet %s: env HYDRA_NODE_TOKEN_FILE must be %s$(NODE_NAME): each node's own token", nodeDS, nodeTokenDir)
}

// nodeHostPaths are the hostPath volumes an overlay patches by name.
var nodeHostPaths = []string{"plugin-dir", "registration-dir", "kubelet-dir", "store"}

// nodePaths: the host paths, their mounts and the flags agree, so that
// kubelet and the plugin see the same files and mounts propagate.
func nodePaths(o objects, ns string, spec *corev1.PodSpec, c *corev1.Container) error {
	var errs []error
	host := map[string]string{}
	for _, name := range nodeHostPaths {
		v := volume(spec, name)
		if v == nil || v.HostPath == nil {
			errs = append(errs, fmt.Errorf("DaemonSet %s: needs hostPath volume %s (overlays patch it by that name)", nodeDS, name))
			continue
		}
		host[name] = v.HostPath.Path
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// kubelet hands target paths on the host: the container must see its
	// root at the same path, and mounts made there must reach the host.
	kd := mountOf(c, "kubelet-dir")
	switch {
	case kd == nil:
		errs = append(errs, fmt.Errorf("DaemonSet %s: %s does not mount kubelet-dir", nodeDS, csiContainer))
	case kd.MountPath != host["kubelet-dir"]:
		errs = append(errs, fmt.Errorf("DaemonSet %s: kubelet-dir is mounted at %s but is %s on the host: kubelet's target paths would not resolve", nodeDS, kd.MountPath, host["kubelet-dir"]))
	case kd.MountPropagation == nil || *kd.MountPropagation != corev1.MountPropagationBidirectional:
		errs = append(errs, fmt.Errorf("DaemonSet %s: kubelet-dir must be mounted with mountPropagation Bidirectional: the plugin's bind mounts must reach kubelet and the pods", nodeDS))
	}
	env, _ := envValues(o, ns, c) // nodeEnv reports its errors
	opts, err := csiOptions(c.Args, env)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if kd != nil && opts.KubeletDir != kd.MountPath {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --kubelet-dir %s is not where kubelet-dir is mounted (%s): the plugin would refuse every staging and target path",
			nodeDS, opts.KubeletDir, kd.MountPath))
	}
	errs = append(errs, nodeSocketPaths(c, host, opts)...)
	errs = append(errs, nodeStorePaths(c, opts)...)
	return errors.Join(errs...)
}

// nodeSocketPaths: the CSI socket is in plugin-dir, where kubelet (told
// by --kubelet-csi-endpoint) dials it; the registration socket is in
// registration-dir.
func nodeSocketPaths(c *corev1.Container, host map[string]string, opts app.Options) []error {
	var errs []error
	sock := socketPath(opts.Endpoint)
	pd := mountOf(c, "plugin-dir")
	if pd == nil || path.Dir(sock) != pd.MountPath {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --endpoint %s must be in the plugin-dir mount", nodeDS, opts.Endpoint))
	}
	if opts.KubeletRegistrationDir != "" {
		if want := path.Join(host["plugin-dir"], path.Base(sock)); opts.KubeletCSIEndpoint != want {
			errs = append(errs, fmt.Errorf("DaemonSet %s: --kubelet-csi-endpoint %q: kubelet finds the socket at %s on the host", nodeDS, opts.KubeletCSIEndpoint, want))
		}
		if rd := mountOf(c, "registration-dir"); rd == nil || rd.MountPath != opts.KubeletRegistrationDir {
			errs = append(errs, fmt.Errorf("DaemonSet %s: --kubelet-registration-dir %s is not where registration-dir is mounted", nodeDS, opts.KubeletRegistrationDir))
		}
	}
	return errs
}

// nodeStorePaths: the cache root is the store volume, and the RAM tier's
// tmpfs is under a Bidirectional mount, so that it outlives a restart of
// the plugin's container (pods read from it).
func nodeStorePaths(c *corev1.Container, opts app.Options) []error {
	var errs []error
	if m := mountHolding(c, opts.CacheRoot); m == nil || m.Name != "store" {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --cache-root %s is not on the store volume", nodeDS, opts.CacheRoot))
	}
	if opts.MemoryRoot == "" {
		return errs
	}
	m := mountHolding(c, opts.MemoryRoot)
	if m == nil || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationBidirectional {
		errs = append(errs, fmt.Errorf("DaemonSet %s: --memory-root %s must be under a mount with Bidirectional propagation, "+
			"or the tmpfs dies with the container and a restarted plugin loses the RAM copies pods read", nodeDS, opts.MemoryRoot))
	}
	if lim, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
		size := resource.MustParse(opts.MemorySize)
		if lim.Cmp(size) <= 0 {
			errs = append(errs, fmt.Errorf("DaemonSet %s: memory limit %s is not above --memory-size %s: the tmpfs pages count against it", nodeDS, lim.String(), opts.MemorySize))
		}
	}
	return errs
}

// nodeLiveness: a liveness probe on /healthz, at a port something in the
// pod serves it on (hydra-csi's --health-address, or the livenessprobe
// sidecar's --health-port).
func nodeLiveness(spec *corev1.PodSpec, c *corev1.Container) error {
	p := c.LivenessProbe
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		return fmt.Errorf("DaemonSet %s: %s needs a livenessProbe httpGet /healthz", nodeDS, csiContainer)
	}
	port, err := portNumber(c, p.HTTPGet.Port)
	if err != nil {
		return fmt.Errorf("DaemonSet %s: %w", nodeDS, err)
	}
	served := map[int]bool{}
	if addr, ok := flagValue(c.Args, "health-address"); ok {
		n, err := addressPort(addr)
		if err != nil {
			return fmt.Errorf("DaemonSet %s: --health-address: %w", nodeDS, err)
		}
		served[n] = true
	}
	for _, sc := range spec.Containers {
		if v, ok := flagValue(sc.Args, "health-port"); ok && sc.Name != csiContainer {
			var n int
			_, _ = fmt.Sscan(v, &n)
			served[n] = true
		}
	}
	if !served[port] {
		return fmt.Errorf("DaemonSet %s: the liveness probe asks port %d, which nothing in the pod serves /healthz on", nodeDS, port)
	}
	return nil
}
