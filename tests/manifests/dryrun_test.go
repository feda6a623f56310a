package manifests_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// TestServerDryRun sends every rendered object, then a pod made from each
// workload's template, to a real kube-apiserver as a server-side dry run
// with strict field validation: the schema, validation and admission
// (ServiceAccount, Priority, PodSecurity) that `kubectl apply` meets.
// Only the namespaces and ServiceAccounts the pods need are created.
func TestServerDryRun(t *testing.T) {
	tgs := targets(t)
	bin := kubectl(t)
	kube := testenv.StartKube(t)
	for _, tg := range tgs {
		t.Run(tg.name, func(t *testing.T) {
			objs := render(t, tg)
			pods, err := templatePods(objs)
			if err != nil {
				t.Fatal(err)
			}
			var setup, rest objects
			for _, u := range objs {
				if u.GetKind() == "Namespace" || u.GetKind() == "ServiceAccount" {
					setup = append(setup, u)
				} else {
					rest = append(rest, u)
				}
			}
			setup = append(setup, defaultServiceAccounts(objs, pods)...)
			apply(t, bin, kube, setup, false)
			apply(t, bin, kube, rest, true)
			apply(t, bin, kube, pods, true)
		})
	}
}

// apply runs `kubectl apply --server-side` on objs (a dry run when dry)
// and requires every object to be applied.
func apply(t *testing.T, bin string, kube *testenv.Kube, objs objects, dry bool) {
	t.Helper()
	if len(objs) == 0 {
		return
	}
	var stream bytes.Buffer
	for _, u := range objs {
		raw, err := yaml.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		stream.WriteString("---\n")
		stream.Write(raw)
	}
	args := []string{"--kubeconfig", kube.Kubeconfig, "apply", "--server-side", "--field-manager=hydra-manifests-test",
		"--validate=strict", "-f", "-"}
	if dry {
		args = append(args, "--dry-run=server")
	}
	cmd := exec.Command(bin, args...) //nolint:gosec // G204: the test's own tool
	cmd.Stdin = &stream
	out, err := cmd.CombinedOutput()
	applied := strings.Count(string(out), "serverside-applied")
	if err != nil || applied != len(objs) {
		t.Errorf("kubectl %s: %v: %d of %d objects applied:\n%s", strings.Join(args[2:], " "), err, applied, len(objs), out)
	}
}

// templatePods makes a Pod of each workload's template, as its controller
// would (a StatefulSet's claims become volumes), so that the pod-level
// admission runs on what the workload will create.
func templatePods(o objects) (objects, error) {
	var out objects
	for _, u := range o {
		switch u.GetKind() {
		case "Deployment", "DaemonSet", "StatefulSet":
		default:
			continue
		}
		tmpl, err := templateOf(u)
		if err != nil {
			return nil, err
		}
		pod := &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      strings.ToLower(u.GetKind()) + "-" + u.GetName() + "-template",
				Namespace: u.GetNamespace(), Labels: tmpl.Labels, Annotations: tmpl.Annotations,
			},
			Spec: tmpl.Spec,
		}
		if u.GetKind() == "StatefulSet" {
			s, err := convert[appsv1.StatefulSet](u)
			if err != nil {
				return nil, err
			}
			for _, c := range s.Spec.VolumeClaimTemplates {
				pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("%s-%s-0", c.Name, s.Name)},
				}})
			}
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pod)
		if err != nil {
			return nil, err
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}

// defaultServiceAccounts are the "default" ServiceAccounts that pods
// without one need and that nothing here creates (no controller-manager
// runs to make them).
func defaultServiceAccounts(o, pods objects) objects {
	var out objects
	have := map[string]bool{}
	for _, u := range o.ofKind("ServiceAccount") {
		have[u.GetNamespace()+"/"+u.GetName()] = true
	}
	for _, p := range pods {
		sa, _, _ := unstructured.NestedString(p.Object, "spec", "serviceAccountName")
		ns := p.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		if sa != "" || have[ns+"/default"] {
			continue
		}
		have[ns+"/default"] = true
		out = append(out, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ServiceAccount",
			"metadata": map[string]any{"name": "default", "namespace": ns},
		}})
	}
	return out
}
