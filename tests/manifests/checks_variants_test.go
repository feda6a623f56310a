package manifests_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hydra-csi/hydra/pkg/manager/auth"
)

// devOnlyLabel marks the only Secrets allowed in deploy/: the dev
// overlay's generated, public, development tokens.
const devOnlyLabel = "hydra.csi.dev/dev-only"

// checkNoSecrets: real installs make their Secrets themselves; what is in
// the repository is public. Only Secrets labelled dev-only may render.
func checkNoSecrets(o objects) error {
	var errs []error
	for _, u := range o.ofKind("Secret") {
		if u.GetLabels()[devOnlyLabel] != "true" {
			errs = append(errs, fmt.Errorf("Secret %s is shipped without the label %s=true: the repository must not carry secret values", u.GetName(), devOnlyLabel))
		}
	}
	return errors.Join(errs...)
}

// secretValue decodes key of the Secret whose name starts with prefix
// (generated names carry a hash).
func secretValue(o objects, prefix, key string) (string, error) {
	for _, u := range o.ofKind("Secret") {
		if !strings.HasPrefix(u.GetName(), prefix) {
			continue
		}
		s, err := convert[corev1.Secret](u)
		if err != nil {
			return "", err
		}
		if v, ok := s.StringData[key]; ok {
			return v, nil
		}
		if v, ok := s.Data[key]; ok {
			return string(v), nil
		}
		return "", fmt.Errorf("Secret %s has no key %s", u.GetName(), key)
	}
	return "", fmt.Errorf("no Secret %s", prefix)
}

// checkDev: the dev overlay's tokens parse as the manager parses them,
// the node's and the controller's tokens are in the manager's file with
// the roles they need, every token says it is for development, and the
// S3 settings are all there.
func checkDev(o objects) error {
	csv, err := secretValue(o, "hydra-manager-tokens", "tokens.csv")
	if err != nil {
		return err
	}
	tokens, err := auth.Parse(strings.NewReader(csv))
	if err != nil {
		return fmt.Errorf("dev tokens.csv: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(csv, "\n") {
		if tok, _, _ := strings.Cut(strings.TrimSpace(line), ","); tok != "" && !strings.HasPrefix(tok, "#") && !strings.Contains(tok, "dev-only-INSECURE") {
			errs = append(errs, fmt.Errorf("dev tokens.csv: token %.8s... must say dev-only-INSECURE, so nobody mistakes it for a real one", tok))
		}
	}
	for _, want := range []struct {
		secret, key string
		act         auth.Action
		role        string
	}{
		{"hydra-node-tokens", "shared", auth.Node, "a role that acts as any node"},
		{"hydra-controller-token", "token", auth.Read, "a role that reads channels"},
	} {
		tok, err := secretValue(o, want.secret, want.key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, ok := tokens.Lookup(tok)
		if !ok || !p.Allowed(want.act, "node-1") {
			errs = append(errs, fmt.Errorf("Secret %s: its token is not in the manager's tokens.csv with %s", want.secret, want.role))
		}
	}
	for _, key := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL_S3"} {
		if _, err := secretValue(o, "hydra-s3", key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, devPods(o), secretRefsResolve(o))...)
}

// secretRefsResolve: an overlay that generates the Secrets must also make
// the workloads name them — same namespace, hashed name — or the pods
// wait for Secrets that never come.
func secretRefsResolve(o objects) error {
	have := map[string]bool{}
	for _, u := range o {
		if u.GetKind() == "Secret" {
			have[u.GetNamespace()+"/"+u.GetName()] = true
		}
	}
	var errs []error
	for _, u := range o {
		spec, err := podSpecOf(u)
		if err != nil || spec == nil {
			continue
		}
		var names []string
		for _, v := range spec.Volumes {
			if v.Secret != nil {
				names = append(names, v.Secret.SecretName)
			}
		}
		for _, c := range allContainers(spec) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					names = append(names, e.ValueFrom.SecretKeyRef.Name)
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					names = append(names, e.SecretRef.Name)
				}
			}
		}
		for _, name := range names {
			if name == "hydra-consul" { // the Consul overlay's, optional
				continue
			}
			if !have[u.GetNamespace()+"/"+name] {
				errs = append(errs, fmt.Errorf("%s %s/%s names Secret %s, which the overlay does not render in its namespace", u.GetKind(), u.GetNamespace(), u.GetName(), name))
			}
		}
	}
	return errors.Join(errs...)
}

// devPods: images loaded onto the node are used as they are, and Hydra's
// own containers log verbosely.
func devPods(o objects) error {
	var errs []error
	for _, u := range o {
		spec, err := podSpecOf(u)
		if err != nil || spec == nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range allContainers(spec) {
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				errs = append(errs, fmt.Errorf("%s %s: container %s: imagePullPolicy %q: want IfNotPresent", u.GetKind(), u.GetName(), c.Name, c.ImagePullPolicy))
			}
			v, _ := flagValue(c.Args, "v")
			if n, err := strconv.Atoi(v); strings.HasPrefix(c.Image, "ghcr.io/hydra-csi/") && (err != nil || n < 4) {
				errs = append(errs, fmt.Errorf("%s %s: container %s: want --v=4 or more in development", u.GetKind(), u.GetName(), c.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// podSpecOf returns the pod spec of a Pod or workload, nil for other kinds.
func podSpecOf(obj *unstructured.Unstructured) (*corev1.PodSpec, error) {
	switch obj.GetKind() {
	case "Pod":
		p, err := convert[corev1.Pod](obj)
		if err != nil {
			return nil, err
		}
		return &p.Spec, nil
	case "Deployment", "DaemonSet", "StatefulSet":
		tmpl, err := templateOf(obj)
		if err != nil {
			return nil, err
		}
		return &tmpl.Spec, nil
	}
	return nil, nil
}

// templateOf returns a workload's pod template.
func templateOf(u *unstructured.Unstructured) (*corev1.PodTemplateSpec, error) {
	switch u.GetKind() {
	case "Deployment":
		d, err := convert[appsv1.Deployment](u)
		if err != nil {
			return nil, err
		}
		return &d.Spec.Template, nil
	case "DaemonSet":
		d, err := convert[appsv1.DaemonSet](u)
		if err != nil {
			return nil, err
		}
		return &d.Spec.Template, nil
	case "StatefulSet":
		s, err := convert[appsv1.StatefulSet](u)
		if err != nil {
			return nil, err
		}
		return &s.Spec.Template, nil
	}
	return nil, fmt.Errorf("%s %s is not a workload", u.GetKind(), u.GetName())
}

// sidecarFlags are hydra-csi's stand-ins for node-driver-registrar.
var sidecarFlags = []string{"kubelet-registration-dir", "kubelet-csi-endpoint"}

// checkSidecars (components/sidecars over base): node-driver-registrar
// and livenessprobe run beside hydra-csi, whose arguments are the base's
// without its own registration flags, and whose --health-address (its
// /metrics) is on a port the livenessprobe does not take.
func checkSidecars(base objects) check {
	return func(o objects) error {
		bds, err1 := typed[appsv1.DaemonSet](base, "DaemonSet", nodeDS)
		ds, err2 := typed[appsv1.DaemonSet](o, "DaemonSet", nodeDS)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		bc, c := container(&bds.Spec.Template.Spec, csiContainer), container(&ds.Spec.Template.Spec, csiContainer)
		drop := append(slices.Clone(sidecarFlags), "health-address")
		strip := func(args []string) []string {
			return slices.DeleteFunc(slices.Clone(args), func(a string) bool {
				return slices.ContainsFunc(drop, func(f string) bool { return strings.HasPrefix(a, "--"+f+"=") })
			})
		}
		var errs []error
		if got, want := strip(c.Args), strip(bc.Args); !slices.Equal(got, want) || slices.ContainsFunc(c.Args, func(a string) bool {
			return slices.ContainsFunc(sidecarFlags, func(f string) bool { return strings.HasPrefix(a, "--"+f+"=") })
		}) {
			errs = append(errs, fmt.Errorf("DaemonSet %s with sidecars: %s args %v: want the base's without %v: %v", nodeDS, csiContainer, c.Args, sidecarFlags, want))
		}
		errs = append(errs, sidecarMetrics(&ds.Spec.Template.Spec, c))
		endpoint, _ := flagValue(bc.Args, "kubelet-csi-endpoint")
		reg := imageContainer(&ds.Spec.Template.Spec, "csi-node-driver-registrar")
		if reg == nil {
			errs = append(errs, fmt.Errorf("DaemonSet %s with sidecars: no node-driver-registrar", nodeDS))
		} else if p, _ := flagValue(reg.Args, "kubelet-registration-path"); p != endpoint {
			errs = append(errs, fmt.Errorf("DaemonSet %s with sidecars: the registrar's --kubelet-registration-path %q: want %s", nodeDS, p, endpoint))
		} else if m := mountOf(reg, "registration-dir"); m == nil || m.MountPath != "/registration" {
			errs = append(errs, fmt.Errorf("DaemonSet %s with sidecars: the registrar needs registration-dir at /registration (its fixed path)", nodeDS))
		}
		if imageContainer(&ds.Spec.Template.Spec, "livenessprobe") == nil {
			errs = append(errs, fmt.Errorf("DaemonSet %s with sidecars: no livenessprobe", nodeDS))
		}
		return errors.Join(errs...)
	}
}

// sidecarMetrics: with the livenessprobe sidecar, hydra-csi still serves
// /metrics on its --health-address, at a port the sidecar leaves free.
func sidecarMetrics(spec *corev1.PodSpec, c *corev1.Container) error {
	addr, ok := flagValue(c.Args, "health-address")
	if !ok {
		return fmt.Errorf("DaemonSet %s with sidecars: %s has no --health-address: the node's /metrics would not be served", nodeDS, csiContainer)
	}
	port, err := addressPort(addr)
	if err != nil {
		return fmt.Errorf("DaemonSet %s with sidecars: --health-address: %w", nodeDS, err)
	}
	if lp := imageContainer(spec, "livenessprobe"); lp != nil {
		if hp, _ := flagValue(lp.Args, "health-port"); hp == strconv.Itoa(port) {
			return fmt.Errorf("DaemonSet %s with sidecars: --health-address %s takes the livenessprobe's --health-port %s", nodeDS, addr, hp)
		}
	}
	return nil
}

// imageContainer returns the container whose image is the named one.
func imageContainer(spec *corev1.PodSpec, image string) *corev1.Container {
	for _, c := range allContainers(spec) {
		if strings.Contains(c.Image, "/"+image+":") {
			return c
		}
	}
	return nil
}
