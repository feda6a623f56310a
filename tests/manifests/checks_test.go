package manifests_test

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"

	"github.com/hydra-csi/hydra/cmd/hydra-csi/app"
	"github.com/hydra-csi/hydra/pkg/driver"
	"github.com/hydra-csi/hydra/pkg/release"
)

// The objects the checks look for, by name.
const (
	nodeDS        = "hydra-node"
	controllerDep = "hydra-controller"
	managerDep    = "hydra-manager"
	csiContainer  = "hydra-csi"
	provisioner   = "csi-provisioner"
	managerCtr    = "hydra-manager"
	nodeSA        = "hydra-node"
	controllerSA  = "hydra-controller"
	managerSA     = "hydra-manager"
)

// check is one invariant of a rendered set; its error says what is wrong
// and why it matters.
type check func(objects) error

// checkCSIDriver: the CSIDriver object matches what the plugin does
// (docs/design.md §3): nothing to attach, pod identity on mount, PVCs and inline
// volumes, and no fsGroup changes to immutable files.
func checkCSIDriver(o objects) error {
	d, err := typed[storagev1.CSIDriver](o, "CSIDriver", driver.DefaultName)
	if err != nil {
		return err
	}
	var errs []error
	if d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
		errs = append(errs, errors.New("CSIDriver: attachRequired must be false: the driver has no ControllerPublish and nothing runs external-attacher"))
	}
	if d.Spec.PodInfoOnMount == nil || !*d.Spec.PodInfoOnMount {
		errs = append(errs, errors.New("CSIDriver: podInfoOnMount must be true: NodePublish needs the pod's identity for its view"))
	}
	modes := slices.Clone(d.Spec.VolumeLifecycleModes)
	slices.Sort(modes)
	if !slices.Equal(modes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecycleEphemeral, storagev1.VolumeLifecyclePersistent}) {
		errs = append(errs, fmt.Errorf("CSIDriver: volumeLifecycleModes %v: want Persistent and Ephemeral", d.Spec.VolumeLifecycleModes))
	}
	if d.Spec.FSGroupPolicy == nil || *d.Spec.FSGroupPolicy != storagev1.NoneFSGroupPolicy {
		errs = append(errs, errors.New("CSIDriver: fsGroupPolicy must be None: the files are shared, read-only releases"))
	}
	return errors.Join(errs...)
}

// knownParam reports whether k is a volume attribute the driver accepts.
func knownParam(k string) bool {
	return slices.Contains([]string{driver.AttrChannel, driver.AttrMedium, driver.AttrRelease, driver.AttrManager}, k) ||
		strings.HasPrefix(k, "csi.storage.k8s.io/")
}

// checkStorageClasses: hydra-nvme on disk, hydra-ram in memory, both late
// bound and deleted with their claims, and every hydra class's parameters
// are keys the driver knows (an unknown one fails every CreateVolume).
func checkStorageClasses(o objects) error {
	var errs []error
	for name, medium := range map[string]string{"hydra-nvme": release.MediumDisk, "hydra-ram": release.MediumMemory} {
		sc, err := typed[storagev1.StorageClass](o, "StorageClass", name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got := sc.Parameters[driver.AttrMedium]; got != medium {
			errs = append(errs, fmt.Errorf("StorageClass %s: parameter medium %q: want %q", name, got, medium))
		}
		if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			errs = append(errs, fmt.Errorf("StorageClass %s: volumeBindingMode must be WaitForFirstConsumer", name))
		}
		if sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			errs = append(errs, fmt.Errorf("StorageClass %s: reclaimPolicy must be Delete", name))
		}
	}
	for _, u := range o.ofKind("StorageClass") {
		sc, err := convert[storagev1.StorageClass](u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if sc.Provisioner != driver.DefaultName {
			if strings.HasPrefix(sc.Name, "hydra") {
				errs = append(errs, fmt.Errorf("StorageClass %s: provisioner %q: want %s", sc.Name, sc.Provisioner, driver.DefaultName))
			}
			continue
		}
		for k := range sc.Parameters {
			if !knownParam(k) {
				errs = append(errs, fmt.Errorf("StorageClass %s: parameter %q is not a volume attribute of the driver (pkg/driver/validate.go)", sc.Name, k))
			}
		}
	}
	return errors.Join(errs...)
}

// restricted: a container of the controller or the manager runs as a
// non-root user, cannot gain privileges, has no capabilities and a
// read-only root filesystem.
func restricted(owner string, pod *corev1.PodSpec) error {
	var errs []error
	for _, c := range allContainers(pod) {
		nonRoot, uid := false, int64(-1)
		if ps := pod.SecurityContext; ps != nil {
			nonRoot = ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
			if ps.RunAsUser != nil {
				uid = *ps.RunAsUser
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		if sc.RunAsUser != nil {
			uid = *sc.RunAsUser
		}
		if !nonRoot || uid == 0 {
			errs = append(errs, fmt.Errorf("%s: container %s must run as non-root (runAsNonRoot true, a non-zero runAsUser)", owner, c.Name))
		}
		if sc.Privileged != nil && *sc.Privileged {
			errs = append(errs, fmt.Errorf("%s: container %s must not be privileged", owner, c.Name))
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			errs = append(errs, fmt.Errorf("%s: container %s must set allowPrivilegeEscalation false", owner, c.Name))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			errs = append(errs, fmt.Errorf("%s: container %s must have a read-only root filesystem", owner, c.Name))
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			errs = append(errs, fmt.Errorf("%s: container %s must drop ALL capabilities and add none", owner, c.Name))
		}
	}
	return errors.Join(errs...)
}

// checkController: csi-provisioner and hydra-csi in one pod, sharing the
// socket, as non-root.
func checkController(o objects) error {
	d, err := typed[appsv1.Deployment](o, "Deployment", controllerDep)
	if err != nil {
		return err
	}
	spec := &d.Spec.Template.Spec
	owner := "Deployment " + controllerDep
	csi, prov := container(spec, csiContainer), container(spec, provisioner)
	if csi == nil || prov == nil {
		return fmt.Errorf("%s: needs containers %s and %s", owner, csiContainer, provisioner)
	}
	errs := []error{restricted(owner, spec)}
	env, err := envValues(o, d.Namespace, csi)
	errs = append(errs, err)
	opts, err := csiOptions(csi.Args, env)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%s: %w", owner, err))...)
	}
	if opts.Mode != app.ModeController {
		errs = append(errs, fmt.Errorf("%s: %s runs --mode=%s: want controller", owner, csiContainer, opts.Mode))
	}
	if !flagOn(prov.Args, "extra-create-metadata") {
		errs = append(errs, fmt.Errorf("%s: %s needs --extra-create-metadata: hydra-csi reads the channel from the PVC it names", owner, provisioner))
	}
	if !flagOn(prov.Args, "leader-election") {
		errs = append(errs, fmt.Errorf("%s: %s needs --leader-election: the replicas would provision twice", owner, provisioner))
	}
	errs = append(errs, controllerSocket(owner, spec, csi, prov, opts))
	pe, err := envValues(o, d.Namespace, prov)
	errs = append(errs, err)
	args, err := expand(prov.Args, pe)
	errs = append(errs, err)
	if ns, ok := flagValue(args, "leader-election-namespace"); !ok || ns != d.Namespace {
		errs = append(errs, fmt.Errorf("%s: %s --leader-election-namespace must be the pod's own namespace %s (its Role is there), not %q", owner, provisioner, d.Namespace, ns))
	}
	return errors.Join(errs...)
}

// controllerSocket: csi-provisioner dials the socket hydra-csi listens on,
// through one volume mounted at one path in both. hydra-csi chmods the
// socket's directory to 0700: as non-root it can do that only to a
// directory it made, not to the volume's own (root-owned) top directory.
func controllerSocket(owner string, spec *corev1.PodSpec, csi, prov *corev1.Container, opts app.Options) error {
	sock := socketPath(opts.Endpoint)
	addr, _ := flagValue(prov.Args, "csi-address")
	if socketPath(addr) != sock {
		return fmt.Errorf("%s: %s --csi-address %q is not hydra-csi's socket %s", owner, provisioner, addr, sock)
	}
	mc, mp := mountHolding(csi, sock), mountHolding(prov, sock)
	if mc == nil || mp == nil || mc.Name != mp.Name || mc.MountPath != mp.MountPath {
		return fmt.Errorf("%s: the socket %s must be on one volume mounted at one path in both containers", owner, sock)
	}
	if path.Dir(sock) == mc.MountPath {
		return fmt.Errorf("%s: hydra-csi's socket %s is at the top of volume %s: hydra-csi chmods the socket's directory, "+
			"which a non-root user cannot do there; put the socket in a subdirectory", owner, sock, mc.Name)
	}
	if v := volume(spec, mc.Name); v == nil || v.EmptyDir == nil {
		return fmt.Errorf("%s: the socket's volume %s should be an emptyDir", owner, mc.Name)
	}
	return nil
}
