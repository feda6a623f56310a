package driver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/hydra-csi/hydra/pkg/release"
)

// PVCGetter reads PVCs: the core/v1 client of client-go, or nil when the
// plugin has no Kubernetes API to talk to.
//
// RBAC: the controller's service account needs `get` on
// persistentvolumeclaims (all namespaces: csi-provisioner serves them all).
// deploy/kubernetes/base/controller-rbac.yaml grants it.
type PVCGetter = corev1client.PersistentVolumeClaimsGetter

// channelFromPVC is the second source of a channel (docs/design.md §3), used when
// the StorageClass has no channel parameter: the PVC annotations
// hydra.csi.dev/channel and hydra.csi.dev/release (pin), read from the PVC
// that csi-provisioner names with --extra-create-metadata. The PVC's
// release annotation, when set, replaces a class's release parameter.
//
// Unlike the StorageClass, the annotations are written by any user who
// may edit a PVC: they are checked as strictly as parameters are.
func (d *Driver) channelFromPVC(ctx context.Context, params map[string]string, attrs volumeAttrs) (volumeAttrs, error) {
	ns, name := params[paramPVCNs], params[paramPVCName]
	if ns == "" || name == "" {
		return attrs, invalid("parameters."+AttrChannel, "", "is required: set the StorageClass parameter %q, "+
			"or run csi-provisioner with --extra-create-metadata and annotate the PVC with %s", AttrChannel, AnnotationChannel)
	}
	pvc, err := d.getPVC(ctx, ns, name)
	if err != nil {
		return attrs, err
	}
	channel, ok := pvc.Annotations[AnnotationChannel]
	if !ok {
		return attrs, invalid("parameters."+AttrChannel, "", "is required: neither the StorageClass parameter %q "+
			"nor the annotation %s of PVC %s/%s names a channel", AttrChannel, AnnotationChannel, ns, name)
	}
	field := fmt.Sprintf("PVC %s/%s: annotation ", ns, name)
	if release.ValidateChannelName(channel) != nil {
		return attrs, invalid(field+AnnotationChannel, channel, "must be a DNS-1123 label of at most 63 characters")
	}
	attrs.Channel = channel
	if pin, ok := pvc.Annotations[AnnotationRelease]; ok {
		if release.ValidateVersion(pin) != nil {
			return attrs, invalid(field+AnnotationRelease, pin, "must match [A-Za-z0-9][A-Za-z0-9._-]{0,127}")
		}
		attrs.Version = pin
	}
	return attrs, nil
}

// getPVC reads one PVC, its errors made into the driver's: a PVC that is
// gone is NotFound; an API server that cannot be reached (a transport
// error: see unavailable in errors.go) or that is overloaded is
// Unavailable, so csi-provisioner retries.
func (d *Driver) getPVC(ctx context.Context, ns, name string) (*corev1.PersistentVolumeClaim, error) {
	if d.opts.PVCs == nil {
		return nil, fmt.Errorf("driver: PVC %s/%s: %w: the StorageClass has no %q parameter and hydra-csi has no Kubernetes API "+
			"to read the PVC's annotation %s from; run it in a pod or with --kubeconfig", ns, name, errPrecondition, AttrChannel, AnnotationChannel)
	}
	pvc, err := d.opts.PVCs.PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return pvc, nil
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("driver: PVC %s/%s: %w: csi-provisioner named it, but the Kubernetes API does not know it", ns, name, errNotFound)
	case apierrors.IsTooManyRequests(err), apierrors.IsServiceUnavailable(err), apierrors.IsServerTimeout(err),
		apierrors.IsTimeout(err), apierrors.IsInternalError(err):
		return nil, fmt.Errorf("driver: PVC %s/%s: %w: %w", ns, name, errUnavailable, err)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("driver: PVC %s/%s: the controller may not read it (its RBAC role needs get on persistentvolumeclaims): %w", ns, name, err)
	}
	return nil, fmt.Errorf("driver: PVC %s/%s: %w", ns, name, err)
}
