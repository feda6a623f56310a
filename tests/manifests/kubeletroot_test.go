package manifests_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// readmePatch is the kubelet-root patch deploy/kubernetes/README.md shows
// after its marker: the test applies what operators copy.
func readmePatch(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(deployDir + "/kubernetes/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(raw, []byte("<!-- kubelet-root-patch -->\n```yaml\n"))
	block, _, closed := bytes.Cut(after, []byte("\n```"))
	if !ok || !closed {
		t.Fatal("README.md: no ```yaml block after <!-- kubelet-root-patch -->")
	}
	return string(block) + "\n"
}

// TestKubeletRootPatch applies the README's patch for a kubelet root of
// /var/lib/k0s/kubelet to the base: the node DaemonSet must still hold
// every invariant, with every kubelet path moved (--kubelet-dir too) and
// the plugin's other arguments unchanged.
func TestKubeletRootPatch(t *testing.T) {
	const root = "/var/lib/k0s/kubelet"
	out, err := kustomizeOverBase(kubectl(t), "", "patches:\n  - path: kubelet-root.yaml\n",
		map[string]string{"kubelet-root.yaml": readmePatch(t)})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNode(objs); err != nil {
		t.Fatal(err)
	}
	ds, err := typed[appsv1.DaemonSet](objs, "DaemonSet", nodeDS)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"plugin-dir", "registration-dir", "kubelet-dir"} {
		if p := volume(&ds.Spec.Template.Spec, name).HostPath.Path; !strings.HasPrefix(p, root) {
			t.Errorf("volume %s: host path %s is not under %s", name, p, root)
		}
	}
	c := nodeCSI(ds)
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(m.MountPath, "/var/lib/kubelet") {
			t.Errorf("mount %s at %s is left over from the default root", m.Name, m.MountPath)
		}
	}
	base, err := typed[appsv1.DaemonSet](renderName(t, "kubernetes/base"), "DaemonSet", nodeDS)
	if err != nil {
		t.Fatal(err)
	}
	want := replaceArg(nodeCSI(base).Args, "--kubelet-csi-endpoint=", "--kubelet-csi-endpoint="+root+"/plugins/hydra.csi.dev/csi.sock")
	want = replaceArg(want, "--kubelet-dir=", "--kubelet-dir="+root)
	if got := c.Args; !sameSet(got, want) {
		t.Errorf("hydra-csi args %v: want the base's with only --kubelet-csi-endpoint and --kubelet-dir moved: %v", got, want)
	}
}

// sameSet compares two argument lists ignoring order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
