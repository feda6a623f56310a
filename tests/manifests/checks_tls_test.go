package manifests_test

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// fileSource finds where the file at path in container c comes from: the
// pod volume it is on and the key of that volume's Secret or ConfigMap.
func fileSource(spec *corev1.PodSpec, c *corev1.Container, path string) (*corev1.Volume, string, error) {
	m := mountHolding(c, path)
	if m == nil {
		return nil, "", fmt.Errorf("%s is on no volume of container %s", path, c.Name)
	}
	v := volume(spec, m.Name)
	if v == nil {
		return nil, "", fmt.Errorf("container %s mounts volume %s, which the pod lacks", c.Name, m.Name)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, m.MountPath), "/")
	var items []corev1.KeyToPath
	switch {
	case v.Secret != nil:
		items = v.Secret.Items
	case v.ConfigMap != nil:
		items = v.ConfigMap.Items
	}
	for _, it := range items {
		if it.Path == rel {
			return v, it.Key, nil
		}
	}
	if len(items) > 0 {
		return nil, "", fmt.Errorf("%s: volume %s projects no item at %s", path, v.Name, rel)
	}
	return v, rel, nil
}

// checkManagerTLS (components/manager-tls): the manager serves with
// tls.crt and tls.key of Secret hydra-manager-tls; hydra-csi in the node
// and controller pods verifies it against ca.crt of ConfigMap
// hydra-manager-ca; and no pod but the manager's mounts that Secret —
// every node's kubelet may read what its pods mount, and the manager's
// private key on every node would let one node impersonate the manager.
// (The https:// URL, the Service port and the probes' scheme are
// checkManager's.)
func checkManagerTLS(o objects) error {
	d, c, args, err := managerPod(o)
	if err != nil {
		return err
	}
	owner := "Deployment " + managerDep
	var errs []error
	for _, f := range []struct{ flag, key string }{{"tls-cert", "tls.crt"}, {"tls-key", "tls.key"}} {
		file, ok := flagValue(args, f.flag)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: needs --%s", owner, f.flag))
			continue
		}
		v, key, err := fileSource(&d.Spec.Template.Spec, c, file)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: --%s: %w", owner, f.flag, err))
		case v.Secret == nil || v.Secret.SecretName != "hydra-manager-tls" || key != f.key:
			errs = append(errs, fmt.Errorf("%s: --%s %s must be key %s of Secret hydra-manager-tls", owner, f.flag, file, f.key))
		}
	}
	for _, w := range []struct{ kind, name string }{{"DaemonSet", nodeDS}, {"Deployment", controllerDep}} {
		errs = append(errs, clientCA(o, w.kind, w.name))
	}
	for _, u := range o {
		spec, err := podSpecOf(u)
		if err != nil || spec == nil || u.GetKind() == "Deployment" && u.GetName() == managerDep {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Secret != nil && v.Secret.SecretName == "hydra-manager-tls" {
				errs = append(errs, fmt.Errorf("%s %s mounts Secret hydra-manager-tls: the manager's private key must stay off the nodes; read the CA from ConfigMap hydra-manager-ca", u.GetKind(), u.GetName()))
			}
		}
	}
	return errors.Join(errs...)
}

// clientCA: hydra-csi of the workload verifies the manager against ca.crt
// of ConfigMap hydra-manager-ca.
func clientCA(o objects, kind, name string) error {
	owner := kind + " " + name
	u := o.get(kind, name)
	if u == nil {
		return fmt.Errorf("no %s", owner)
	}
	spec, err := podSpecOf(u)
	if err != nil {
		return err
	}
	c := container(spec, csiContainer)
	if c == nil {
		return fmt.Errorf("%s: no container %s", owner, csiContainer)
	}
	ns := u.GetNamespace()
	env, err := envValues(o, ns, c)
	if err != nil {
		return fmt.Errorf("%s: %w", owner, err)
	}
	opts, err := csiOptions(c.Args, env)
	if err != nil {
		return fmt.Errorf("%s: %w", owner, err)
	}
	if opts.ManagerCAFile == "" {
		return fmt.Errorf("%s: %s has no --manager-ca-file (or HYDRA_CA_FILE): it would check the manager against the system's CAs", owner, csiContainer)
	}
	v, key, err := fileSource(spec, c, opts.ManagerCAFile)
	if err != nil {
		return fmt.Errorf("%s: the manager's CA: %w", owner, err)
	}
	if v.ConfigMap == nil || v.ConfigMap.Name != "hydra-manager-ca" || key != "ca.crt" {
		return fmt.Errorf("%s: the manager's CA %s must be key ca.crt of ConfigMap hydra-manager-ca", owner, opts.ManagerCAFile)
	}
	return nil
}
