package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/driver"
)

// sidecars are the in-process stand-ins for the node-driver-registrar
// and livenessprobe sidecars; each is nil when its flag is off.
type sidecars struct {
	reg    *registrationServer
	health *healthServer
	// errs gets the first error of a server that stopped on its own.
	errs chan error
}

// startSidecars opens what opts ask for and serves it. On error nothing
// is left open.
func startSidecars(opts Options, d *driver.Driver, metrics prometheus.Gatherer) (*sidecars, error) {
	s := &sidecars{errs: make(chan error, 2)}
	var err error
	if opts.node() && opts.KubeletRegistrationDir != "" {
		s.reg, err = listenRegistration(opts.KubeletRegistrationDir, opts.DriverName, opts.kubeletCSIPath)
		if err != nil {
			return nil, err
		}
		go func() { s.errs <- s.reg.serve() }()
		klog.InfoS("serving kubelet plugin registration", "socket", s.reg.path, "endpoint", opts.kubeletCSIPath)
	}
	if opts.HealthAddress != "" {
		s.health, err = listenHealth(opts.HealthAddress, d, metrics)
		if err != nil {
			s.stopRegistration()
			return nil, err
		}
		go func() { s.errs <- s.health.serve() }()
		klog.InfoS("serving /healthz and /metrics", "address", s.health.addr())
	}
	return s, nil
}

func (s *sidecars) stopRegistration() {
	if s.reg != nil {
		s.reg.stop()
	}
}

func (s *sidecars) stopHealth() {
	if s.health != nil {
		s.health.stop()
	}
}
