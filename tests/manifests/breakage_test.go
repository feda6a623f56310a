package manifests_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/manager"
)

// Shorthands for the breakage table.
func ptr[T any](v T) *T { return &v }

func nodeCSI(ds *appsv1.DaemonSet) *corev1.Container {
	return container(&ds.Spec.Template.Spec, csiContainer)
}

func ctrl(d *appsv1.Deployment, name string) *corev1.Container {
	return container(&d.Spec.Template.Spec, name)
}

// without returns args without the ones starting with prefix.
func without(args []string, prefix string) []string {
	return slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, prefix) })
}

// replaceArg replaces the argument starting with prefix by arg.
func replaceArg(args []string, prefix, arg string) []string {
	return append(without(args, prefix), arg)
}

// TestChecksCatchBreakage breaks one thing at a time in a rendered set and
// requires the check that guards it to fail, naming the reason: a check
// that cannot fail guards nothing.
func TestChecksCatchBreakage(t *testing.T) {
	base := renderName(t, "kubernetes/base")
	tests := []struct {
		name   string
		target string
		check  check
		breaks func(t *testing.T, o objects) objects
		want   string
	}{
		{"attach required", "kubernetes/base", checkCSIDriver, func(t *testing.T, o objects) objects {
			mutate(t, o, "CSIDriver", "hydra.csi.dev", func(d *storagev1.CSIDriver) { d.Spec.AttachRequired = ptr(true) })
			return o
		}, "attachRequired must be false"},
		{"no inline volumes", "kubernetes/base", checkCSIDriver, func(t *testing.T, o objects) objects {
			mutate(t, o, "CSIDriver", "hydra.csi.dev", func(d *storagev1.CSIDriver) {
				d.Spec.VolumeLifecycleModes = []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}
			})
			return o
		}, "volumeLifecycleModes"},
		{"ram class on disk", "kubernetes/base", checkStorageClasses, func(t *testing.T, o objects) objects {
			mutate(t, o, "StorageClass", "hydra-ram", func(sc *storagev1.StorageClass) { sc.Parameters["medium"] = "disk" })
			return o
		}, `StorageClass hydra-ram: parameter medium "disk"`},
		{"misspelt class parameter", "kubernetes/base", checkStorageClasses, func(t *testing.T, o objects) objects {
			mutate(t, o, "StorageClass", "hydra-nvme", func(sc *storagev1.StorageClass) { sc.Parameters["chanel"] = "x" })
			return o
		}, `parameter "chanel" is not a volume attribute`},
		{"immediate binding", "kubernetes/base", checkStorageClasses, func(t *testing.T, o objects) objects {
			mutate(t, o, "StorageClass", "hydra-nvme", func(sc *storagev1.StorageClass) {
				sc.VolumeBindingMode = ptr(storagev1.VolumeBindingImmediate)
			})
			return o
		}, "WaitForFirstConsumer"},
		{"node not critical", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.PriorityClassName = "" })
			return o
		}, "want system-node-critical"},
		{"kubelet-dir not bidirectional", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				mountOf(nodeCSI(ds), "kubelet-dir").MountPropagation = ptr(corev1.MountPropagationHostToContainer)
			})
			return o
		}, "kubelet-dir must be mounted with mountPropagation Bidirectional"},
		{"kubelet-dir elsewhere", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) { mountOf(nodeCSI(ds), "kubelet-dir").MountPath = "/kubelet" })
			return o
		}, "kubelet's target paths would not resolve"},
		{"kubelet root moved without --kubelet-dir", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				volume(&ds.Spec.Template.Spec, "kubelet-dir").HostPath.Path = "/var/lib/k0s/kubelet"
				mountOf(nodeCSI(ds), "kubelet-dir").MountPath = "/var/lib/k0s/kubelet"
			})
			return o
		}, "--kubelet-dir /var/lib/kubelet is not where kubelet-dir is mounted (/var/lib/k0s/kubelet)"},
		{"tmpfs does not propagate", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) { mountOf(nodeCSI(ds), "store").MountPropagation = nil })
			return o
		}, "--memory-root /var/lib/hydra/memory must be under a mount with Bidirectional propagation"},
		{"memory limit below the tmpfs", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				nodeCSI(ds).Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}
			})
			return o
		}, "memory limit 1Gi is not above --memory-size"},
		{"one token shared by every node", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				c.Env = append(c.Env, corev1.EnvVar{Name: "HYDRA_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "hydra-node-token"}, Key: "token"}}})
				c.Args = without(c.Args, "--token-file=")
			})
			return o
		}, "not one shared by every node"},
		{"every node reads the same key", "kubernetes/base", checkNodeTokenBound, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				for i := range c.Env {
					if c.Env[i].Name == "HYDRA_NODE_TOKEN_FILE" {
						c.Env[i].Value = nodeTokenDir + "shared"
					}
				}
			})
			return o
		}, "each node's own token"},
		{"manager without a memory limit", "kubernetes/base", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) {
				container(&d.Spec.Template.Spec, managerCtr).Resources.Limits = nil
			})
			return o
		}, "memory limit 0: want at least 2Gi"},
		{"node name from the pod name", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				for i := range nodeCSI(ds).Env {
					if e := &nodeCSI(ds).Env[i]; e.Name == "NODE_NAME" {
						e.ValueFrom.FieldRef.FieldPath = "metadata.name"
					}
				}
			})
			return o
		}, "env NODE_NAME must come from the downward API's spec.nodeName"},
		{"a second privileged container", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.Containers = append(ds.Spec.Template.Spec.Containers, corev1.Container{
					Name: "helper", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}})
			})
			return o
		}, "container helper is privileged: only hydra-csi may be"},
		{"hydra-csi unprivileged", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) { nodeCSI(ds).SecurityContext.Privileged = ptr(false) })
			return o
		}, "container hydra-csi must be privileged"},
		{"misspelt plugin flag", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				c.Args = replaceArg(c.Args, "--cache-root=", "--cache-rot=/var/lib/hydra")
			})
			return o
		}, "unknown flag: --cache-rot"},
		{"kubelet dials the wrong socket", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				c.Args = replaceArg(c.Args, "--kubelet-csi-endpoint=", "--kubelet-csi-endpoint=/var/lib/kubelet/plugins/hydra/csi.sock")
			})
			return o
		}, "--kubelet-csi-endpoint \"/var/lib/kubelet/plugins/hydra/csi.sock\": kubelet finds the socket at"},
		{"liveness on a port nobody serves", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				nodeCSI(ds).LivenessProbe.HTTPGet.Port = intstr.FromInt32(9809)
			})
			return o
		}, "asks port 9809, which nothing in the pod serves"},
		{"no extra create metadata", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				c := ctrl(d, provisioner)
				c.Args = without(c.Args, "--extra-create-metadata")
			})
			return o
		}, "needs --extra-create-metadata"},
		{"no leader election", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				c := ctrl(d, provisioner)
				c.Args = append(without(c.Args, "--leader-election"), "--leader-election-namespace=$(NAMESPACE)")
			})
			return o
		}, "needs --leader-election:"},
		{"provisioner as root", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) { ctrl(d, provisioner).SecurityContext.RunAsUser = ptr(int64(0)) })
			return o
		}, "container csi-provisioner must run as non-root"},
		{"writable root filesystem", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				ctrl(d, csiContainer).SecurityContext.ReadOnlyRootFilesystem = ptr(false)
			})
			return o
		}, "container hydra-csi must have a read-only root filesystem"},
		{"socket at the top of the emptyDir", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				c, p := ctrl(d, csiContainer), ctrl(d, provisioner)
				c.Args = replaceArg(c.Args, "--endpoint=", "--endpoint=unix:///csi/csi.sock")
				p.Args = replaceArg(p.Args, "--csi-address=", "--csi-address=/csi/csi.sock")
			})
			return o
		}, "put the socket in a subdirectory"},
		{"provisioner dials another socket", "kubernetes/base", checkController, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				p := ctrl(d, provisioner)
				p.Args = replaceArg(p.Args, "--csi-address=", "--csi-address=/csi/csi.sock")
			})
			return o
		}, "is not hydra-csi's socket"},
		{"two bbolt replicas", "kubernetes/base", checkManagerBolt, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(2)) })
			return o
		}, "replicas must be 1"},
		{"bbolt rolling update", "kubernetes/base", checkManagerBolt, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) {
				d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType}
			})
			return o
		}, "strategy must be Recreate"},
		{"PDB blocks drains", "kubernetes/base", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "PodDisruptionBudget", managerDep, func(p *policyv1.PodDisruptionBudget) {
				p.Spec.MaxUnavailable, p.Spec.MinAvailable = nil, ptr(intstr.FromInt32(1))
			})
			return o
		}, "every drain would hang"},
		{"readiness on healthz", "kubernetes/base", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) { ctrl(d, managerCtr).ReadinessProbe.HTTPGet.Path = "/healthz" })
			return o
		}, "needs an httpGet probe on /readyz"},
		{"manager-url names another service", "kubernetes/base", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "ConfigMap", "hydra-config", func(cm *corev1.ConfigMap) { cm.Data["manager-url"] = "http://hydra.hydra-system.svc" })
			return o
		}, "does not name Service hydra-manager"},
		{"one consul replica", "kubernetes/overlays/consul", checkManagerConsul, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr(int32(1)) })
			return o
		}, "at least 3 replicas"},
		{"consul overlay on bbolt", "kubernetes/overlays/consul", checkManagerConsul, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) {
				c := ctrl(d, managerCtr)
				c.Args = replaceArg(c.Args, "--store=", "--store=bolt:///var/lib/hydra-manager/state.db")
			})
			return o
		}, `--store "bolt:///var/lib/hydra-manager/state.db": want consul://`},
		{"consul overlay keeps the lease", "kubernetes/overlays/consul", checkManagerConsul, func(_ *testing.T, o objects) objects {
			return append(o, base.get("Role", "hydra-manager-lease"), base.get("RoleBinding", "hydra-manager-lease"))
		}, "may still use leases"},
		{"manager cannot evict", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "ClusterRole", "hydra-manager", func(r *rbacv1.ClusterRole) {
				r.Rules = slices.DeleteFunc(r.Rules, func(p rbacv1.PolicyRule) bool { return slices.Contains(p.Resources, "pods/eviction") })
			})
			return o
		}, "may not create pods/eviction cluster-wide"},
		{"manager cannot watch Nodes", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "ClusterRole", "hydra-manager", func(r *rbacv1.ClusterRole) {
				r.Rules = slices.DeleteFunc(r.Rules, func(p rbacv1.PolicyRule) bool { return slices.Contains(p.Resources, "nodes") })
			})
			return o
		}, "may not list nodes cluster-wide"},
		{"manager may change Nodes", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "ClusterRole", "hydra-manager", func(r *rbacv1.ClusterRole) {
				for i, p := range r.Rules {
					if slices.Contains(p.Resources, "nodes") {
						r.Rules[i].Verbs = append(slices.Clone(p.Verbs), "get", "update")
					}
				}
			})
			return o
		}, "may get nodes cluster-wide, more than it needs"},
		{"manager cannot label Nodes", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "ClusterRole", "hydra-manager", func(r *rbacv1.ClusterRole) {
				for i, p := range r.Rules {
					if slices.Contains(p.Resources, "nodes") {
						r.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(p.Verbs), func(v string) bool { return v == "patch" })
					}
				}
			})
			return o
		}, "may not patch nodes cluster-wide"},
		{"peer distribution off", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				c.Args = without(without(c.Args, "--peer-listen="), "--peer-advertise=")
			})
			return o
		}, `--peer-listen "": want :7470`},
		{"peer port not on the host", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				for i := range c.Ports {
					c.Ports[i].HostPort = 0
				}
			})
			return o
		}, "needs port peer, containerPort and hostPort 7470/TCP"},
		{"peer advertised at the pod's IP", "kubernetes/base", checkNode, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := nodeCSI(ds)
				for i, e := range c.Env {
					if e.Name == "HYDRA_NODE_IP" {
						c.Env[i].ValueFrom.FieldRef.FieldPath = "status.podIP"
					}
				}
			})
			return o
		}, "HYDRA_NODE_IP must come from the downward API's status.hostIP"},
		{"controller reads secrets", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "ClusterRole", "hydra-controller", func(r *rbacv1.ClusterRole) {
				r.Rules = append(r.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
			})
			return o
		}, "ServiceAccount hydra-controller: may get secrets cluster-wide"},
		{"node gets an API token", "kubernetes/base", checkRBAC, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.AutomountServiceAccountToken = ptr(true) })
			return o
		}, "mounts an API token it never uses"},
		{"a shipped secret", "kubernetes/base", checkNoSecrets, func(_ *testing.T, o objects) objects {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
				"metadata": map[string]any{"name": "hydra-node-tokens"}, "stringData": map[string]any{"node-1": "x"}}})
		}, "Secret hydra-node-tokens is shipped without the label"},
		{"controller token unknown to the manager", "kubernetes/overlays/dev", checkDev, func(_ *testing.T, o objects) objects {
			for _, u := range o.ofKind("Secret") {
				if strings.HasPrefix(u.GetName(), "hydra-controller-token") {
					u.Object["data"] = map[string]any{"token": "ZGV2LW9ubHktSU5TRUNVUkUtb3RoZXI="} // dev-only-INSECURE-other
				}
			}
			return o
		}, "Secret hydra-controller-token: its token is not in the manager's tokens.csv with a role that reads channels"},
		{"sidecar registers the wrong socket", "kubernetes/components/sidecars", checkSidecars(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				c := imageContainer(&ds.Spec.Template.Spec, "csi-node-driver-registrar")
				c.Args = replaceArg(c.Args, "--kubelet-registration-path=", "--kubelet-registration-path=/csi/csi.sock")
			})
			return o
		}, "the registrar's --kubelet-registration-path \"/csi/csi.sock\""},
		{"sidecars and self-registration", "kubernetes/components/sidecars", checkSidecars(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				nodeCSI(ds).Args = append(nodeCSI(ds).Args, "--kubelet-registration-dir=/registration")
			})
			return o
		}, "want the base's without"},
		{"sidecar variant's metrics on the livenessprobe's port", "kubernetes/components/sidecars", checkSidecars(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				nodeCSI(ds).Args = replaceArg(nodeCSI(ds).Args, "--health-address=", "--health-address=:9808")
			})
			return o
		}, "takes the livenessprobe's --health-port 9808"},
		{"sidecar variant without the node's metrics", "kubernetes/components/sidecars", checkSidecars(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				nodeCSI(ds).Args = slices.DeleteFunc(nodeCSI(ds).Args, func(a string) bool { return strings.HasPrefix(a, "--health-address=") })
			})
			return o
		}, "has no --health-address"},
		{"TLS manager probed over plain HTTP", "kubernetes/components/manager-tls", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) {
				ctrl(d, managerCtr).ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTP
			})
			return o
		}, `the /readyz probe's scheme is "HTTP", the manager serves HTTPS`},
		{"TLS manager named by an http URL", "kubernetes/components/manager-tls", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "ConfigMap", "hydra-config", func(cm *corev1.ConfigMap) {
				cm.Data["manager-url"] = "http://hydra-manager.hydra-system.svc"
			})
			return o
		}, "want https://hydra-manager.hydra-system.svc"},
		{"TLS manager behind an http port", "kubernetes/components/manager-tls", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "Service", managerDep, func(s *corev1.Service) { s.Spec.Ports[0].Name = "http" })
			return o
		}, "needs port 443 named https"},
		{"plain manager named by an https URL", "kubernetes/base", checkManager, func(t *testing.T, o objects) objects {
			mutate(t, o, "ConfigMap", "hydra-config", func(cm *corev1.ConfigMap) {
				cm.Data["manager-url"] = "https://hydra-manager.hydra-system.svc"
			})
			return o
		}, "want http://hydra-manager.hydra-system.svc"},
		{"node mounts the manager's key", "kubernetes/components/manager-tls", checkManagerTLS, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				ds.Spec.Template.Spec.Volumes = append(ds.Spec.Template.Spec.Volumes, corev1.Volume{Name: "ca",
					VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "hydra-manager-tls"}}})
			})
			return o
		}, "DaemonSet hydra-node mounts Secret hydra-manager-tls"},
		{"controller without the manager's CA", "kubernetes/components/manager-tls", checkManagerTLS, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", controllerDep, func(d *appsv1.Deployment) {
				c := ctrl(d, csiContainer)
				c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HYDRA_CA_FILE" })
			})
			return o
		}, "Deployment hydra-controller: hydra-csi has no --manager-ca-file"},
		{"node's CA from the wrong key", "kubernetes/components/manager-tls", checkManagerTLS, func(t *testing.T, o objects) objects {
			mutate(t, o, "DaemonSet", nodeDS, func(ds *appsv1.DaemonSet) {
				for i := range ds.Spec.Template.Spec.Volumes {
					if v := &ds.Spec.Template.Spec.Volumes[i]; v.ConfigMap != nil {
						v.ConfigMap.Items[0].Key = "tls.crt"
					}
				}
			})
			return o
		}, "must be key ca.crt of ConfigMap hydra-manager-ca"},
		{"manager key from the token Secret", "kubernetes/components/manager-tls", checkManagerTLS, func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", managerDep, func(d *appsv1.Deployment) {
				c := ctrl(d, managerCtr)
				c.Args = replaceArg(c.Args, "--tls-key=", "--tls-key=/etc/hydra/tokens.csv")
			})
			return o
		}, "--tls-key /etc/hydra/tokens.csv must be key tls.key of Secret hydra-manager-tls"},
		{"example without readiness gate", "examples", checkExamples(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", "search-api", func(d *appsv1.Deployment) { d.Spec.Template.Spec.ReadinessGates = nil })
			return o
		}, "needs readiness gate " + manager.ConditionDataReady},
		{"example with a bad channel", "examples", checkExamples(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "PersistentVolumeClaim", "search-index", func(c *corev1.PersistentVolumeClaim) {
				c.Annotations["hydra.csi.dev/channel"] = "Search_Index"
			})
			return o
		}, `annotation hydra.csi.dev/channel "Search_Index"`},
		{"example with a bad reload", "examples", checkExamples(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", "search-api", func(d *appsv1.Deployment) {
				d.Spec.Template.Annotations[manager.AnnotationReload] = "sometimes"
			})
			return o
		}, `annotation hydra.csi.dev/reload "sometimes"`},
		{"example affinity on a wrong value", "examples", checkExamples(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", "search-api", func(d *appsv1.Deployment) {
				d.Spec.Template.Spec.Affinity.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Preference.MatchExpressions[0].Values = []string{"yes"}
			})
			return o
		}, "want In [true]"},
		{"example affinity required", "examples", checkExamples(base), func(t *testing.T, o objects) objects {
			mutate(t, o, "Deployment", "search-api", func(d *appsv1.Deployment) {
				na := d.Spec.Template.Spec.Affinity.NodeAffinity
				na.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{
					na.PreferredDuringSchedulingIgnoredDuringExecution[0].Preference}}
				na.PreferredDuringSchedulingIgnoredDuringExecution = nil
			})
			return o
		}, "make it preferred"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := renderName(t, tt.target)
			if err := tt.check(o); err != nil {
				t.Fatalf("the unbroken %s fails already: %v", tt.target, err)
			}
			err := tt.check(tt.breaks(t, o))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("broken %s: got %v, want an error containing %q", tt.target, err, tt.want)
			}
		})
	}
}

// TestFlagParsersRefuseUnknown shows that the way TestManagerFlags and
// TestProvisionerFlags parse arguments fails on a flag the binary lacks.
func TestFlagParsersRefuseUnknown(t *testing.T) {
	out, _ := exec.Command(managerBin, "--listen=:8080", "--stor=bolt:///x", "--help").CombinedOutput() //nolint:gosec // G204: the test's own binary
	if strings.Contains(string(out), "help requested") || !strings.Contains(string(out), "unknown flag: --stor") {
		t.Errorf("hydra-manager --stor=... --help: %s", out)
	}
	bin := testenv.Tool(t, "csi-provisioner")
	out, err := exec.Command(bin, "--csi-addr=/csi/hydra/csi.sock", "--version").CombinedOutput() //nolint:gosec // G204: the test's own tool
	if err == nil || !strings.Contains(string(out), "unknown flag: --csi-addr") {
		t.Errorf("csi-provisioner --csi-addr=... --version: %v\n%s", err, out)
	}
}
