package manifests_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/hydra-csi/hydra/internal/testenv"
)

// managerBin is hydra-manager, built once, to check the manifests' flags
// against its real command line.
var managerBin string

func TestMain(m *testing.M) {
	os.Exit(testenv.RunWithBinary(m, "github.com/hydra-csi/hydra/cmd/hydra-manager", &managerBin))
}

// namedCheck is a check with a name for t.Run.
type namedCheck struct {
	name string
	fn   check
}

// checksFor lists the invariants of each kustomization under deploy/. A
// kustomization without an entry fails the test: a new overlay must say
// what it promises.
func checksFor(t *testing.T, name string) []namedCheck {
	t.Helper()
	common := []namedCheck{
		{"csidriver", checkCSIDriver},
		{"storageclasses", checkStorageClasses},
		{"node", checkNode},
		{"controller", checkController},
		{"manager", checkManager},
		{"rbac", checkRBAC},
		{"no-secrets", checkNoSecrets},
	}
	if name != "kubernetes/overlays/dev" && name != "examples" {
		common = append(common, namedCheck{"node-token-bound", checkNodeTokenBound})
	}
	switch name {
	case "kubernetes/base":
		return append(common, namedCheck{"manager-bolt", checkManagerBolt})
	case "kubernetes/overlays/consul":
		return append(common, namedCheck{"manager-consul", checkManagerConsul})
	case "kubernetes/overlays/dev":
		return append(common, namedCheck{"manager-bolt", checkManagerBolt}, namedCheck{"dev", checkDev})
	case "kubernetes/components/manager-tls":
		return append(common, namedCheck{"manager-bolt", checkManagerBolt}, namedCheck{"manager-tls", checkManagerTLS})
	case "kubernetes/components/sidecars":
		base := renderName(t, "kubernetes/base")
		return append(common, namedCheck{"manager-bolt", checkManagerBolt}, namedCheck{"sidecars", checkSidecars(base)})
	case "examples":
		base := renderName(t, "kubernetes/base")
		return []namedCheck{{"examples", checkExamples(base)}, {"no-secrets", checkNoSecrets}}
	}
	t.Fatalf("no invariants listed for deploy/%s: add it to checksFor", name)
	return nil
}

// TestInvariants checks every kustomization's rendered objects against the
// invariants it promises.
func TestInvariants(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			objs := render(t, tg)
			for _, c := range checksFor(t, tg.name) {
				t.Run(c.name, func(t *testing.T) {
					if err := c.fn(objs); err != nil {
						t.Error(err)
					}
				})
			}
		})
	}
}

// TestManagerFlags parses the manager's arguments in every kustomization
// with the real hydra-manager: a misspelt or removed flag fails here, not
// in a crash-looping pod.
func TestManagerFlags(t *testing.T) {
	for _, tg := range targets(t) {
		objs := render(t, tg)
		if objs.get("Deployment", managerDep) == nil {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			_, _, args, err := managerPod(objs)
			if err != nil {
				t.Fatal(err)
			}
			// Flags are parsed in order: an unknown one fails before
			// --help, which stops the start once all the others parsed.
			out, _ := exec.Command(managerBin, append(args, "--help")...).CombinedOutput() //nolint:gosec // G204: the test's own binary
			if !bytes.Contains(out, []byte("help requested")) {
				t.Errorf("hydra-manager %s: %s", strings.Join(args, " "), out)
			}
		})
	}
}

// TestProvisionerFlags parses csi-provisioner's arguments with the real
// external-provisioner v6.3.0 (`hack/tools.sh csi-provisioner`): it
// exits 0 on --version only once every other flag parsed.
func TestProvisionerFlags(t *testing.T) {
	for _, tg := range targets(t) {
		objs := render(t, tg)
		if objs.get("Deployment", controllerDep) == nil {
			continue
		}
		t.Run(tg.name, func(t *testing.T) {
			bin := testenv.Tool(t, "csi-provisioner")
			d, err := typed[appsv1.Deployment](objs, "Deployment", controllerDep)
			if err != nil {
				t.Fatal(err)
			}
			c := container(&d.Spec.Template.Spec, provisioner)
			if c == nil {
				t.Fatalf("Deployment %s: no container %s", controllerDep, provisioner)
			}
			env, err := envValues(objs, d.Namespace, c)
			if err != nil {
				t.Fatal(err)
			}
			args, err := expand(c.Args, env)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, append(args, "--version")...).CombinedOutput() //nolint:gosec // G204: the test's own tool
			if err != nil {
				t.Errorf("csi-provisioner %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}
