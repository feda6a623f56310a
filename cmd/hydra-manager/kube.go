package main

import (
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/internal/kubeconfig"
	"github.com/hydra-csi/hydra/pkg/manager"
)

// kubeClient is the rollout controller's API server:
//   - --kubeconfig when set; a file that cannot be used stops the start;
//   - else the in-cluster config when running in a pod
//     ($KUBERNETES_SERVICE_HOST set), which must work: a manager in a
//     cluster that cannot reach its API would flip pods without drain;
//   - else none: views move to the head without drain (docs/design.md §6), as on a
//     laptop.
func (o *Options) kubeClient() (kubernetes.Interface, error) {
	cfg, _, err := kubeconfig.Load(o.Kubeconfig, "hydra-manager")
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		klog.InfoS("No Kubernetes API (not in a pod, no --kubeconfig): views move to the head without drain")
		return nil, nil
	}
	// The controller patches a pod's condition twice per move and records
	// an Event or two; client-go's default 5 QPS would pace a 1,000-pod
	// rollout at minutes of client-side waiting.
	cfg.QPS, cfg.Burst = o.KubeQPS, o.KubeBurst
	cl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cl, nil
}

// lease is the rollout controller's Lease: on a bbolt store, whose
// leadership spans one process, when there is a Kubernetes API. With
// Consul the store's lock already elects one controller.
func (o *Options) lease(kube kubernetes.Interface) *manager.Lease {
	if kube == nil || !strings.HasPrefix(o.Store, "bolt://") {
		return nil
	}
	ns := o.LeaseNamespace
	if ns == "" {
		ns = "default"
	}
	host, _ := os.Hostname()
	return &manager.Lease{Namespace: ns, Name: o.LeaseName, Identity: fmt.Sprintf("%s_%d", host, os.Getpid()),
		Duration: o.LeaseDuration, Renew: o.LeaseDuration * 2 / 3, Retry: o.LeaseDuration / 8}
}
