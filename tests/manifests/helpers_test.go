package manifests_test

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
)

// container returns the container (or init container) called name.
func container(spec *corev1.PodSpec, name string) *corev1.Container {
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for i := range cs {
			if cs[i].Name == name {
				return &cs[i]
			}
		}
	}
	return nil
}

// allContainers lists init and regular containers.
func allContainers(spec *corev1.PodSpec) []*corev1.Container {
	var out []*corev1.Container
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			out = append(out, &cs[i])
		}
	}
	return out
}

// volume returns the pod volume called name.
func volume(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// mountOf returns c's mount of the volume called name.
func mountOf(c *corev1.Container, name string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == name {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

// mountHolding returns the mount of c whose path holds path (the deepest
// one, as the kernel resolves it), or nil.
func mountHolding(c *corev1.Container, path string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		if within(path, m.MountPath) && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	return best
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// flagValue returns the value of --name in args: ("v", true) for
// --name=v, ("", true) for a bare --name, ("", false) when absent.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if a == "--"+name {
			return "", true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// flagOn reports whether a boolean flag is given and not false.
func flagOn(args []string, name string) bool {
	v, ok := flagValue(args, name)
	return ok && v != "false"
}

// envValues resolves c's environment as the kubelet would, from the
// rendered objects: ConfigMap and Secret keys that are in the set, the
// downward API's fields with stand-in values. A reference to a ConfigMap
// or key that is not there (and not optional) is an error; so is one to a
// Secret that is there without the key. Absent Secrets are expected (the
// operator makes them): their keys resolve to a placeholder.
func envValues(o objects, namespace string, c *corev1.Container) (map[string]string, error) {
	env := map[string]string{}
	var errs []error
	for _, e := range c.Env {
		v, ok, err := envValue(o, namespace, e)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("container %s: env %s: %w", c.Name, e.Name, err))
		case ok:
			env[e.Name] = v
		}
	}
	return env, errors.Join(errs...)
}

// downward is what the test takes a pod's fields to be.
var downward = map[string]string{"spec.nodeName": "node-1", "metadata.name": "pod-1", "status.hostIP": "10.0.0.7"}

func envValue(o objects, namespace string, e corev1.EnvVar) (string, bool, error) {
	src := e.ValueFrom
	switch {
	case src == nil:
		return e.Value, true, nil
	case src.FieldRef != nil && src.FieldRef.FieldPath == "metadata.namespace":
		return namespace, true, nil
	case src.FieldRef != nil:
		v, ok := downward[src.FieldRef.FieldPath]
		return v, ok, nil
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		return keyOf(o, "ConfigMap", ref.Name, ref.Key, ref.Optional, false)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		return keyOf(o, "Secret", ref.Name, ref.Key, ref.Optional, true)
	}
	return "", false, nil
}

// keyOf reads key of the ConfigMap or Secret name from the set.
func keyOf(o objects, kind, name, key string, optional *bool, mayBeAbsent bool) (string, bool, error) {
	opt := optional != nil && *optional
	u := o.get(kind, name)
	if u == nil {
		if mayBeAbsent || opt {
			return "<" + kind + " " + name + "/" + key + ">", true, nil
		}
		return "", false, fmt.Errorf("%s %s is not in the rendered objects", kind, name)
	}
	if v, ok, _ := nestedString(u.Object, "data", key); ok {
		return v, true, nil
	}
	if v, ok, _ := nestedString(u.Object, "stringData", key); ok {
		return v, true, nil
	}
	if opt {
		return "", false, nil
	}
	return "", false, fmt.Errorf("%s %s has no key %s", kind, name, key)
}

func nestedString(m map[string]any, field, key string) (string, bool, error) {
	sub, ok := m[field].(map[string]any)
	if !ok {
		return "", false, nil
	}
	v, ok := sub[key].(string)
	return v, ok, nil
}

// varRef is a $(NAME) reference in a container's args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand replaces $(NAME) in args with env's values, as the kubelet does;
// a reference to a variable the container does not define is an error
// (the kubelet would pass it on literally).
func expand(args []string, env map[string]string) ([]string, error) {
	out := make([]string, len(args))
	var errs []error
	for i, a := range args {
		out[i] = varRef.ReplaceAllStringFunc(a, func(ref string) string {
			name := varRef.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				errs = append(errs, fmt.Errorf("%s refers to $(%s), which the container's env does not define", a, name))
				return ref
			}
			return v
		})
	}
	return out, errors.Join(errs...)
}

// csiOptions parses a hydra-csi container's arguments with the plugin's
// own flags and validates them as it would at start: NODE_NAME,
// HYDRA_MANAGER and the TLS variables come from its resolved environment.
func csiOptions(args []string, env map[string]string) (app.Options, error) {
	opts := app.DefaultOptions()
	opts.NodeID, opts.Manager = env["NODE_NAME"], env["HYDRA_MANAGER"]
	opts.ManagerCAFile, opts.ManagerClientCert, opts.ManagerClientKey = env["HYDRA_CA_FILE"], env["HYDRA_CLIENT_CERT"], env["HYDRA_CLIENT_KEY"]
	// $(VAR)s as the kubelet expands them (--peer-advertise's node IP).
	args, err := expand(args, env)
	if err != nil {
		return opts, fmt.Errorf("hydra-csi %s: %w", strings.Join(args, " "), err)
	}
	fs := pflag.NewFlagSet("hydra-csi", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts.AddFlags(fs)
	// klog's flags (--v) as hydra-csi registers them. They are bound to
	// klog's globals: a --v here raises this test's own verbosity, which
	// is harmless.
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	fs.AddGoFlagSet(klogFlags)
	if err := fs.Parse(args); err != nil {
		return opts, fmt.Errorf("hydra-csi %s: %w", strings.Join(args, " "), err)
	}
	if err := opts.Validate(); err != nil {
		return opts, fmt.Errorf("hydra-csi %s: %w", strings.Join(args, " "), err)
	}
	return opts, nil
}

// socketPath is the file of a unix:// endpoint.
func socketPath(endpoint string) string {
	p, _ := strings.CutPrefix(endpoint, "unix://")
	return p
}

// portNumber resolves a probe's port (a number or a container port's
// name) in c.
func portNumber(c *corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("container %s has no port named %s", c.Name, port.StrVal)
}

// addressPort is the port of a HOST:PORT listen address.
func addressPort(addr string) (int, error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return 0, fmt.Errorf("address %q: no port", addr)
	}
	return strconv.Atoi(addr[i+1:])
}
