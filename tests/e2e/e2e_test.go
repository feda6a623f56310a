//go:build e2e

package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestEndToEnd is the whole system on the bbolt manager: a PVC mounted by
// kubelet into two pods, a drained rollout to v2 and back, an inline and a
// RAM volume, and a clean teardown.
func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	w.deploy("base")

	// 1. v1, and a Deployment of 2 replicas on a hydra-nvme PVC.
	start := time.Now()
	w.hydra("channel", "create", channel, "--drain", "20s", "--reload-timeout", "2m")
	w.publish("v1")
	w.createApp()
	w.waitAppReading("v1", upTimeout)
	w.checkProvisioned("web-data")
	w.step("v1: PVC provisioned, 2 pods Ready reading v1", start)

	// 2. v2: the pods move one at a time, without restarting.
	w.rollTo("v2", func() { w.publish("v2") })

	// 3. hydra rollback: back to v1 the same way.
	w.rollTo("v1", func() { w.hydra("rollback", channel) })
	for _, p := range w.status().Pods {
		if strings.HasPrefix(p.PodName, "web-") && p.Current != "v1" {
			t.Errorf("hydra status after rollback: pod %s on %q, want v1", p.PodName, p.Current)
		}
	}

	// 4. An inline ephemeral volume and a hydra-ram PVC.
	start = time.Now()
	w.otherVolumes()
	w.step("inline volume and hydra-ram PVC read their data", start)

	// 5. Delete it all: unpublish, unstage, DeleteVolume.
	start = time.Now()
	w.deleteApp()
	w.step("pods and PVCs deleted; volumes unpublished, unstaged, deleted", start)
}

// checkProvisioned checks that csi-provisioner made the claim's PV through
// the driver, with the channel resolved from the PVC annotation.
func (w *world) checkProvisioned(claim string) {
	t := w.t
	c, err := w.c.Client.CoreV1().PersistentVolumeClaims(appNS).Get(t.Context(), claim, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pv, err := w.c.Client.CoreV1().PersistentVolumes().Get(t.Context(), c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PV of %s: %v", claim, err)
	}
	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driver {
		t.Fatalf("PV %s is not a %s volume: %+v", pv.Name, driver, pv.Spec.PersistentVolumeSource)
	}
	if got := pv.Spec.CSI.VolumeAttributes["channel"]; got != channel {
		t.Errorf("PV %s volume attributes %v: channel %q, want %q (from the PVC annotation)", pv.Name, pv.Spec.CSI.VolumeAttributes, got, channel)
	}
}

// otherVolumes runs a pod with an inline ephemeral volume of the channel
// and one with a hydra-ram PVC, and checks that both read the head.
func (w *world) otherVolumes() {
	t := w.t
	ctx := t.Context()
	cs := w.c.Client
	readOnly := true
	inline := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "inline", Labels: map[string]string{"app": "other"}},
		Spec: podSpec(corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{
			Driver: driver, ReadOnly: &readOnly, VolumeAttributes: map[string]string{"channel": channel},
		}}, false),
	}
	mustCreate(t, func() error {
		_, err := cs.CoreV1().PersistentVolumeClaims(appNS).Create(ctx, pvc("ram-data", "hydra-ram"), metav1.CreateOptions{})
		return err
	})
	ram := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ram", Labels: map[string]string{"app": "other"}},
		Spec:       podSpec(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "ram-data", ReadOnly: true}}, false),
	}
	for _, p := range []*corev1.Pod{inline, ram} {
		mustCreate(t, func() error {
			_, err := cs.CoreV1().Pods(appNS).Create(ctx, p, metav1.CreateOptions{})
			return err
		})
	}
	w.c.WaitFor(upTimeout, "the inline and the RAM pod Ready", func(context.Context) (bool, error) {
		pods := w.appPods(appNS, "app=other")
		n := 0
		for i := range pods {
			if podReady(&pods[i]) {
				n++
			}
		}
		return n == 2, nil
	})
	for _, name := range []string{"inline", "ram"} {
		if got := w.read(appNS, name, versionFile); got != "v1\n" {
			t.Errorf("pod %s reads %q, want the head v1", name, got)
		}
		if got := w.read(appNS, name, "/data/current/"+dataset+"/nested/model.bin"); got != string(releaseFiles("v1")["nested/model.bin"]) {
			t.Errorf("pod %s: nested/model.bin differs from what was published (%d bytes)", name, len(got))
		}
	}
	w.checkProvisioned("ram-data")
}

// deleteApp deletes the workloads and the claims and waits until kubelet
// unmounted every Hydra volume and csi-provisioner deleted the PVs.
func (w *world) deleteApp() {
	t := w.t
	ctx := t.Context()
	cs := w.c.Client
	var pvs []string
	for _, claim := range []string{"web-data", "ram-data"} {
		c, err := cs.CoreV1().PersistentVolumeClaims(appNS).Get(ctx, claim, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pvs = append(pvs, c.Spec.VolumeName)
	}
	if err := cs.CoreV1().Namespaces().Delete(ctx, appNS, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.c.WaitFor(upTimeout, "namespace "+appNS+" gone", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, appNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	w.c.WaitFor(upTimeout, "the PVs deleted through DeleteVolume", func(ctx context.Context) (bool, error) {
		for _, pv := range pvs {
			if _, err := cs.CoreV1().PersistentVolumes().Get(ctx, pv, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	})
	// The node agent reports views; unpublish removed every one of them.
	w.c.WaitFor(upTimeout, "hydra status: no view of a deleted pod", func(context.Context) (bool, error) {
		for _, p := range w.status().Pods {
			if p.PodNamespace == appNS {
				return false, nil
			}
		}
		return true, nil
	})
	for _, m := range w.c.Mounts() {
		if strings.Contains(m, "kubernetes.io~csi") || strings.Contains(m, "/plugins/kubernetes.io/csi/") {
			t.Errorf("a CSI mount is left after its pod and claim are gone: %s", m)
		}
	}
}
