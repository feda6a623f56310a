package app

import (
	"fmt"

	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/internal/kubeconfig"
	"github.com/hydra-csi/hydra/pkg/driver"
)

// pvcGetter is the controller's way to the PVCs whose annotations name a
// volume's channel (docs/design.md §3):
//   - --kubeconfig when set; a file that cannot be used stops the start;
//   - else the in-cluster config when running in a pod
//     ($KUBERNETES_SERVICE_HOST set); when that fails (no service-account
//     token mounted) the plugin still starts, since classes with a channel
//     parameter need no API, and says why in its log;
//   - else none: CreateVolume of a class without a channel parameter is
//     refused with FailedPrecondition naming --kubeconfig.
func (o *Options) pvcGetter() (driver.PVCGetter, error) {
	cfg, inCluster, err := kubeconfig.Load(o.Kubeconfig, "hydra-csi")
	switch {
	case err != nil && inCluster:
		klog.ErrorS(err, "No Kubernetes API: PVC annotations cannot name channels; set --kubeconfig")
		return nil, nil
	case err != nil:
		return nil, err
	case cfg == nil:
		klog.InfoS("No Kubernetes API (not in a pod, no --kubeconfig): only StorageClass parameters name channels")
		return nil, nil
	}
	cl, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cl, nil
}
