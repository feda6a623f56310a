// Package manifests_test checks Hydra's Kubernetes manifests (deploy/):
// every kustomization renders with the real kubectl, every rendered object
// (and a pod made from every workload's template) passes a real
// kube-apiserver's server-side dry run, and the rendered objects hold the
// invariants the driver and the manager depend on. `make verify-manifests`
// runs it alone.
package manifests_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/internal/testenv"
)

const (
	// deployDir is the repository's deploy/, relative to this package.
	deployDir = "../../deploy"
	// baseDir is the kustomization a Component is rendered over.
	baseDir = deployDir + "/kubernetes/base"
)

// target is one kustomization under deploy/: a Kustomization rendered as
// it is, or a Component rendered over the base.
type target struct {
	// name is its path below deploy/, e.g. "kubernetes/overlays/dev".
	name      string
	dir       string
	component bool
}

// targets finds every kustomization.yaml under deploy/, so a new overlay
// or component is checked without touching this test.
func targets(t *testing.T) []target {
	t.Helper()
	var out []target
	err := filepath.WalkDir(deployDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		raw, err := os.ReadFile(path) //nolint:gosec // G304: a file of this repository
		if err != nil {
			return err
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal(raw, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		dir := filepath.Dir(path)
		rel, err := filepath.Rel(deployDir, dir)
		if err != nil {
			return err
		}
		switch head.Kind {
		case "Kustomization", "":
			out = append(out, target{name: filepath.ToSlash(rel), dir: dir})
		case "Component":
			out = append(out, target{name: filepath.ToSlash(rel), dir: dir, component: true})
		default:
			return fmt.Errorf("%s: kind %q: want Kustomization or Component", path, head.Kind)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("find kustomizations under %s: %v", deployDir, err)
	}
	if len(out) == 0 {
		t.Fatalf("no kustomization.yaml under %s", deployDir)
	}
	return out
}

// objects are the rendered objects of one target, in output order.
type objects []*unstructured.Unstructured

// get returns the object of kind and name (any namespace), or nil.
func (o objects) get(kind, name string) *unstructured.Unstructured {
	for _, u := range o {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// ofKind returns every object of kind.
func (o objects) ofKind(kind string) objects {
	var out objects
	for _, u := range o {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// typed converts the object of kind and name into T (a k8s.io/api type),
// refusing fields T does not have.
func typed[T any](o objects, kind, name string) (*T, error) {
	u := o.get(kind, name)
	if u == nil {
		return nil, fmt.Errorf("no %s %s in the rendered objects", kind, name)
	}
	return convert[T](u)
}

func convert[T any](u *unstructured.Unstructured) (*T, error) {
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return out, nil
}

// clone deep-copies the set, for tests that break one object.
func (o objects) clone() objects {
	out := make(objects, len(o))
	for i, u := range o {
		out[i] = u.DeepCopy()
	}
	return out
}

// mutate converts the object of kind and name to T, lets f change it and
// stores it back: how the breakage tests break one field.
func mutate[T any](t *testing.T, o objects, kind, name string, f func(*T)) {
	t.Helper()
	obj, err := typed[T](o, kind, name)
	if err != nil {
		t.Fatal(err)
	}
	f(obj)
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := o.get(kind, name)
	u.Object = m
	u.SetKind(kind) // typed objects may leave TypeMeta empty
}

// kubectl returns the kubectl `hack/tools.sh kubectl` builds.
func kubectl(t *testing.T) string {
	t.Helper()
	return testenv.Tool(t, "kubectl")
}

var (
	renderMu    sync.Mutex
	renderCache = map[string]renderResult{}
)

type renderResult struct {
	objs objects
	err  error
}

// render runs `kubectl kustomize` on tg (once per test binary) and parses
// its output; each caller gets its own copy to change.
func render(t *testing.T, tg target) objects {
	t.Helper()
	bin := kubectl(t)
	renderMu.Lock()
	defer renderMu.Unlock()
	r, ok := renderCache[tg.name]
	if !ok {
		var out []byte
		out, r.err = kustomize(bin, tg)
		if r.err == nil {
			r.objs, r.err = parse(out)
		}
		renderCache[tg.name] = r
	}
	if r.err != nil {
		t.Fatalf("render %s: %v", tg.name, r.err)
	}
	return r.objs.clone()
}

// renderName renders the target named name (a path below deploy/).
func renderName(t *testing.T, name string) objects {
	t.Helper()
	for _, tg := range targets(t) {
		if tg.name == name {
			return render(t, tg)
		}
	}
	t.Fatalf("no kustomization %s under %s", name, deployDir)
	return nil
}

// kustomize renders a Kustomization directly, and a Component through a
// throwaway kustomization that applies it to the base.
func kustomize(bin string, tg target) ([]byte, error) {
	if !tg.component {
		return kubectlKustomize(bin, tg.dir)
	}
	return kustomizeOverBase(bin, tg.dir, "", nil)
}

// kustomizeOverBase renders, in a temporary directory, a kustomization of
// the base, the component in the repository directory component (unless
// empty), extra (more YAML fields of the kustomization) and files.
func kustomizeOverBase(bin, component, extra string, files map[string]string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "hydra-manifests-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	// kustomize wants relative paths to kustomizations outside its root.
	base, err := relAbs(tmp, baseDir)
	if err != nil {
		return nil, err
	}
	k := fmt.Sprintf("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [%q]\n", filepath.ToSlash(base))
	if component != "" {
		comp, err := relAbs(tmp, component)
		if err != nil {
			return nil, err
		}
		k += fmt.Sprintf("components: [%q]\n", filepath.ToSlash(comp))
	}
	if files == nil {
		files = map[string]string{}
	}
	files["kustomization.yaml"] = k + extra
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	return kubectlKustomize(bin, tmp)
}

// kubectlKustomize runs `kubectl kustomize dir`.
func kubectlKustomize(bin, dir string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "kustomize", dir) //nolint:gosec // G204: the test's own tool and paths
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl kustomize %s: %w\n%s", dir, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// relAbs is target relative to dir, both made absolute first.
func relAbs(dir, target string) (string, error) {
	abs, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	return filepath.Rel(dir, abs)
}

// parse splits a YAML stream into objects.
func parse(stream []byte) (objects, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var out objects
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("object without kind or name: %v", m)
		}
		out = append(out, u)
	}
}

// TestRenderEveryKustomization renders every kustomization under deploy/
// and refuses an empty or duplicated output.
func TestRenderEveryKustomization(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			objs := render(t, tg)
			if len(objs) == 0 {
				t.Fatal("renders no objects")
			}
			var seen []string
			for _, u := range objs {
				id := u.GetAPIVersion() + "/" + u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
				if slices.Contains(seen, id) {
					t.Errorf("%s rendered twice", id)
				}
				seen = append(seen, id)
			}
			t.Logf("%d objects: %s", len(objs), strings.Join(seen, ", "))
		})
	}
}
