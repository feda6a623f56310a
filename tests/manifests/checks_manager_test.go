package manifests_test

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// managerPod returns the manager Deployment, its container and its args
// with $(VAR)s expanded.
func managerPod(o objects) (*appsv1.Deployment, *corev1.Container, []string, error) {
	d, err := typed[appsv1.Deployment](o, "Deployment", managerDep)
	if err != nil {
		return nil, nil, nil, err
	}
	c := container(&d.Spec.Template.Spec, managerCtr)
	if c == nil {
		return nil, nil, nil, fmt.Errorf("Deployment %s: no container %s", managerDep, managerCtr)
	}
	env, err := envValues(o, d.Namespace, c)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("Deployment %s: %w", managerDep, err)
	}
	args, err := expand(c.Args, env)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("Deployment %s: %w", managerDep, err)
	}
	return d, c, args, nil
}

// checkManager: what either store needs — tokens from their Secret,
// probes on the API port, a Service the ConfigMap's manager-url names,
// non-root, and a PDB that lets drains through.
func checkManager(o objects) error {
	d, c, args, err := managerPod(o)
	if err != nil {
		return err
	}
	owner := "Deployment " + managerDep
	spec := &d.Spec.Template.Spec
	errs := []error{restricted(owner, spec), managerTokens(owner, spec, c, args), managerPDB(o, d), managerMemory(owner, c)}
	listen, _ := flagValue(args, "listen")
	port, err := addressPort(listen)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: --listen: %w", owner, err))...)
	}
	// With --tls-cert the port speaks only TLS: a plain probe gets 400.
	scheme := corev1.URISchemeHTTP
	if _, tls := flagValue(args, "tls-cert"); tls {
		scheme = corev1.URISchemeHTTPS
	}
	for probe, want := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != want {
			errs = append(errs, fmt.Errorf("%s: needs an httpGet probe on %s (readiness /readyz, liveness /healthz)", owner, want))
			continue
		}
		if n, err := portNumber(c, probe.HTTPGet.Port); err != nil || n != port {
			errs = append(errs, fmt.Errorf("%s: the %s probe asks port %v, the manager listens on %d", owner, want, probe.HTTPGet.Port.String(), port))
		}
		if got := probe.HTTPGet.Scheme; got != scheme && (got != "" || scheme != corev1.URISchemeHTTP) {
			errs = append(errs, fmt.Errorf("%s: the %s probe's scheme is %q, the manager serves %s", owner, want, got, scheme))
		}
	}
	if !hasFieldEnv(c, "POD_NAMESPACE", "metadata.namespace") {
		errs = append(errs, fmt.Errorf("%s: env POD_NAMESPACE must come from metadata.namespace (the Lease's namespace)", owner))
	}
	errs = append(errs, managerService(o, d, c, args, port))
	return errors.Join(errs...)
}

// managerMemory: a memory request and limit, and GOMEMLIMIT below the
// limit, so that large publishes make the runtime collect rather than the
// kernel kill the manager (docs/manager.md has the measured ceiling).
func managerMemory(owner string, c *corev1.Container) error {
	req, limit := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
	var errs []error
	if req.Cmp(resource.MustParse("256Mi")) < 0 {
		errs = append(errs, fmt.Errorf("%s: memory request %s: want at least 256Mi", owner, req))
	}
	if limit.Cmp(resource.MustParse("2Gi")) < 0 {
		errs = append(errs, fmt.Errorf("%s: memory limit %s: want at least 2Gi, two large publishes' ceiling", owner, limit))
	}
	soft := ""
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			soft = e.Value
		}
	}
	q, err := resource.ParseQuantity(strings.TrimSuffix(soft, "B"))
	if err != nil || q.Cmp(*limit) >= 0 {
		errs = append(errs, fmt.Errorf("%s: env GOMEMLIMIT %q: want a size below the memory limit %s, such as 1536MiB", owner, soft, limit))
	}
	return errors.Join(errs...)
}

func hasFieldEnv(c *corev1.Container, name, field string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == field {
			return true
		}
	}
	return false
}

// managerTokens: --token-file is tokens.csv of Secret hydra-manager-tokens.
func managerTokens(owner string, spec *corev1.PodSpec, c *corev1.Container, args []string) error {
	file, ok := flagValue(args, "token-file")
	if !ok {
		return fmt.Errorf("%s: needs --token-file (without it the manager refuses to start)", owner)
	}
	m := mountHolding(c, file)
	if m == nil {
		return fmt.Errorf("%s: --token-file %s is on no volume", owner, file)
	}
	v := volume(spec, m.Name)
	if v == nil || v.Secret == nil || !strings.HasPrefix(v.Secret.SecretName, "hydra-manager-tokens") {
		return fmt.Errorf("%s: --token-file %s must come from Secret hydra-manager-tokens", owner, file)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(file, m.MountPath), "/")
	key := rel
	for _, it := range v.Secret.Items {
		if it.Path == rel {
			key = it.Key
		}
	}
	if key != "tokens.csv" {
		return fmt.Errorf("%s: --token-file %s is key %q of the Secret: want tokens.csv", owner, file, key)
	}
	return nil
}

// managerService: Service hydra-manager reaches the API — port 80 named
// http, or with --tls-cert port 443 named https (meshes read the protocol
// from the name) — and hydra-config's manager-url names it with the
// scheme the manager serves.
func managerService(o objects, d *appsv1.Deployment, c *corev1.Container, args []string, port int) error {
	svc, err := typed[corev1.Service](o, "Service", managerDep)
	if err != nil {
		return err
	}
	scheme, svcPort := "http", int32(80)
	if _, tls := flagValue(args, "tls-cert"); tls {
		scheme, svcPort = "https", 443
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == scheme && svc.Spec.Ports[i].Port == svcPort {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return fmt.Errorf("Service %s: needs port %d named %s", managerDep, svcPort, scheme)
	}
	if n, err := portNumber(c, sp.TargetPort); err != nil || n != port {
		return fmt.Errorf("Service %s: targetPort %s is not the manager's port %d", managerDep, sp.TargetPort.String(), port)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			return fmt.Errorf("Service %s: selector %s=%s does not select the manager's pods", managerDep, k, v)
		}
	}
	cm := o.get("ConfigMap", "hydra-config")
	if cm == nil {
		return errors.New("no ConfigMap hydra-config")
	}
	raw, _, _ := nestedString(cm.Object, "data", "manager-url")
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != scheme || u.Port() != "" && u.Port() != fmt.Sprint(svcPort) {
		return fmt.Errorf("ConfigMap hydra-config: manager-url %q: want %s://%s.%s.svc (the manager serves %s)", raw, scheme, svc.Name, svc.Namespace, scheme)
	}
	if h := u.Hostname(); h != svc.Name+"."+svc.Namespace+".svc" && !strings.HasPrefix(h, svc.Name+"."+svc.Namespace+".svc.") {
		return fmt.Errorf("ConfigMap hydra-config: manager-url %q does not name Service %s in %s", raw, svc.Name, svc.Namespace)
	}
	return nil
}

// managerPDB: the PDB lets at least one pod go (else drains hang).
func managerPDB(o objects, d *appsv1.Deployment) error {
	pdb, err := typed[policyv1.PodDisruptionBudget](o, "PodDisruptionBudget", managerDep)
	if err != nil {
		return err
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	if mu := pdb.Spec.MaxUnavailable; mu != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(mu, int(replicas), true); err != nil || v < 1 {
			return fmt.Errorf("PodDisruptionBudget %s: maxUnavailable %s lets no pod go: every drain would hang", managerDep, mu.String())
		}
		return nil
	}
	if ma := pdb.Spec.MinAvailable; ma != nil {
		if v, err := intstr.GetScaledValueFromIntOrPercent(ma, int(replicas), true); err != nil || v >= int(replicas) {
			return fmt.Errorf("PodDisruptionBudget %s: minAvailable %s of %d replicas lets no pod go: every drain would hang", managerDep, ma.String(), replicas)
		}
	}
	return nil
}

// checkManagerBolt: one replica on a bbolt file on a PVC; Recreate, so
// the old pod lets go of the file before the new one opens it.
func checkManagerBolt(o objects) error {
	d, c, args, err := managerPod(o)
	if err != nil {
		return err
	}
	owner := "Deployment " + managerDep
	var errs []error
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		errs = append(errs, fmt.Errorf("%s: a bbolt store is one process's file: replicas must be 1", owner))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		errs = append(errs, fmt.Errorf("%s: strategy must be Recreate on bbolt (a new pod would wait on the old one's file lock and volume)", owner))
	}
	store, _ := flagValue(args, "store")
	u, err := url.Parse(store)
	if err != nil || u.Scheme != "bolt" {
		return errors.Join(append(errs, fmt.Errorf("%s: --store %q: want bolt:///PATH", owner, store))...)
	}
	m := mountHolding(c, path.Dir(u.Path))
	spec := &d.Spec.Template.Spec
	if m == nil || volume(spec, m.Name) == nil || volume(spec, m.Name).PersistentVolumeClaim == nil {
		return errors.Join(append(errs, fmt.Errorf("%s: the bbolt file %s must be on a PersistentVolumeClaim", owner, u.Path))...)
	}
	claim := volume(spec, m.Name).PersistentVolumeClaim.ClaimName
	if o.get("PersistentVolumeClaim", claim) == nil {
		errs = append(errs, fmt.Errorf("%s: PVC %s is not in the rendered objects", owner, claim))
	}
	if ps := spec.SecurityContext; ps == nil || ps.FSGroup == nil {
		errs = append(errs, fmt.Errorf("%s: needs an fsGroup, so that its non-root user can write the state volume", owner))
	}
	errs = append(errs, leaseRBAC(o, d.Namespace, true))
	return errors.Join(errs...)
}

// checkManagerConsul: replicas over Consul, spread over nodes, no volume,
// no Lease, and a PDB that keeps a majority.
func checkManagerConsul(o objects) error {
	d, c, args, err := managerPod(o)
	if err != nil {
		return err
	}
	owner := "Deployment " + managerDep
	var errs []error
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		errs = append(errs, fmt.Errorf("%s: on Consul run at least 3 replicas", owner))
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		errs = append(errs, fmt.Errorf("%s: strategy must be RollingUpdate on Consul", owner))
	}
	store, _ := flagValue(args, "store")
	if u, err := url.Parse(store); err != nil || u.Scheme != "consul" || u.Host == "" || strings.Contains(u.Host, "<") {
		errs = append(errs, fmt.Errorf("%s: --store %q: want consul://HOST:PORT/PREFIX (the address from hydra-config)", owner, store))
	}
	if !hasSecretEnv(c, "CONSUL_HTTP_TOKEN") {
		errs = append(errs, fmt.Errorf("%s: env CONSUL_HTTP_TOKEN should come from an optional Secret", owner))
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			errs = append(errs, fmt.Errorf("%s: volume %s is a PVC: replicas on Consul need none (and would contend for it)", owner, v.Name))
		}
	}
	if len(o.ofKind("PersistentVolumeClaim")) > 0 {
		errs = append(errs, errors.New("the Consul overlay still renders a PersistentVolumeClaim"))
	}
	if a := d.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil {
		errs = append(errs, fmt.Errorf("%s: needs pod anti-affinity, so that one node's loss leaves a majority", owner))
	}
	if pdb, err := typed[policyv1.PodDisruptionBudget](o, "PodDisruptionBudget", managerDep); err != nil {
		errs = append(errs, err)
	} else if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.String() != "2" {
		errs = append(errs, fmt.Errorf("PodDisruptionBudget %s: want minAvailable 2", managerDep))
	}
	errs = append(errs, leaseRBAC(o, d.Namespace, false))
	return errors.Join(errs...)
}

func hasSecretEnv(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil &&
			e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional {
			return true
		}
	}
	return false
}

// leaseRBAC: on bbolt the manager may hold its Lease; on Consul it may not
// (least privilege: the store's lock elects it).
func leaseRBAC(o objects, ns string, want bool) error {
	var missing []string
	for _, verb := range []string{"get", "create", "update"} {
		if !allowed(o, ns, managerSA, permission{"coordination.k8s.io", "leases", verb, ns}) {
			missing = append(missing, verb)
		}
	}
	switch {
	case want && len(missing) > 0:
		return fmt.Errorf("ServiceAccount %s: may not %s leases in %s: the rollout controller's Lease (bbolt)", managerSA, strings.Join(missing, ", "), ns)
	case !want && len(missing) < 3:
		return fmt.Errorf("ServiceAccount %s: may still use leases in %s, which it does not need on Consul", managerSA, ns)
	}
	return nil
}
