package manager

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hydra-csi/hydra/pkg/release"
)

// event records one Event through the controller's recorder (which
// aggregates repeats) and counts it.
func (k *kubeRollout) event(ref *corev1.ObjectReference, warning bool, reason, message string) {
	typ := corev1.EventTypeNormal
	if warning {
		typ = corev1.EventTypeWarning
	}
	k.recorder.Event(ref, typ, reason, message)
	k.m.metrics.events.WithLabelValues(reason).Inc()
}

// warnDownloads tells each new download failure the nodes report (see
// warnedDownloads) with a Warning Event on every pod that has a view of
// the channel on that node, and on the PVC behind each such view: that is
// where `kubectl describe` users look, and the node plugin cannot write
// Events itself (it has no Kubernetes API access).
func (k *kubeRollout) warnDownloads(ctx context.Context, nodes []release.NodeStatus) {
	warnings := k.warned.update(nodes)
	if len(warnings) == 0 {
		return
	}
	views := map[string][]release.View{}
	for _, n := range nodes {
		views[n.Node] = n.Views
	}
	for _, w := range warnings {
		k.m.logger().Info("node download failed", "node", w.node, "channel", w.channel, "release", w.version, "reason", w.reason)
		told := map[string]bool{}
		for _, v := range views[w.node] {
			if v.Channel != w.channel || v.PodUID == "" {
				continue
			}
			pod, ok := k.podObject(v.PodUID)
			if !ok {
				continue // gone, or not yet seen: nobody to tell
			}
			if !told[v.PodUID] {
				told[v.PodUID] = true
				k.event(podObjectRef(pod), true, w.reason, w.message)
			}
			for _, pvc := range k.claimsOf(ctx, pod, v.Channel, v.VolumeID) {
				k.event(claimRef(pvc), true, w.reason, w.message)
			}
		}
	}
}

// claimsOf returns the PVCs of pod behind its view volumeID of channel:
// claims (persistentVolumeClaim or generic ephemeral volumes) bound to the
// PV whose CSI volume ID, as hydra-csi's CreateVolume derives it from the
// PV's name, is volumeID. So the manager needs `get` on PVCs, not access to
// PersistentVolumes. Views of inline CSI volumes, and of static PVs whose
// volumeHandle was written by hand, have no such claim: their Events are
// on the pod only.
func (k *kubeRollout) claimsOf(ctx context.Context, pod *corev1.Pod, channel, volumeID string) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	for _, vol := range pod.Spec.Volumes {
		name := claimName(pod, vol)
		if name == "" {
			continue
		}
		pvc, err := k.kube.CoreV1().PersistentVolumeClaims(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				k.m.logger().Error(err, "reading a pod's PVC to record an Event on it", "pod", pod.Namespace+"/"+pod.Name, "pvc", name)
			}
			continue
		}
		if pvc.Spec.VolumeName != "" && release.VolumeID(channel, pvc.Spec.VolumeName) == volumeID {
			out = append(out, pvc)
		}
	}
	return out
}

// claimName is the PVC a pod volume mounts, "" for other volumes. A
// generic ephemeral volume's claim is named <pod>-<volume>.
func claimName(pod *corev1.Pod, vol corev1.Volume) string {
	switch {
	case vol.PersistentVolumeClaim != nil:
		return vol.PersistentVolumeClaim.ClaimName
	case vol.Ephemeral != nil:
		return pod.Name + "-" + vol.Name
	}
	return ""
}

func podObjectRef(p *corev1.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: p.Namespace, Name: p.Name, UID: p.UID}
}

func claimRef(c *corev1.PersistentVolumeClaim) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name, UID: c.UID}
}
