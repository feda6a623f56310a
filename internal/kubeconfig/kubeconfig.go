// Package kubeconfig finds the Kubernetes API the binaries talk to, the
// same way for each: a --kubeconfig file when given, else the in-cluster
// config when running in a pod, else none. What a missing API means is the
// caller's to decide.
package kubeconfig

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load returns the REST config, or nil when there is no kubeconfig and the
// process is not in a pod ($KUBERNETES_SERVICE_HOST unset). inCluster says
// which source it tried, so a caller may tolerate a pod without a
// service-account token but not a bad --kubeconfig.
func Load(kubeconfig, userAgent string) (cfg *rest.Config, inCluster bool, err error) {
	switch {
	case kubeconfig != "":
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, false, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, true, fmt.Errorf("in-cluster Kubernetes config (give --kubeconfig otherwise): %w", err)
		}
		inCluster = true
	default:
		return nil, false, nil
	}
	cfg.UserAgent = userAgent
	return cfg, inCluster, nil
}
