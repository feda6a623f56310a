package manifests_test

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/hydra-csi/hydra/pkg/driver"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
)

// reloadValue is what the manager accepts in hydra.csi.dev/reload.
var reloadValue = regexp.MustCompile(`^(none|restart|http://:[0-9]{1,5}/\S*)$`)

// checkExamples: claims name a valid channel by the driver's annotation,
// inline volumes use known attributes, and the workloads carry the
// manager's readiness gate, a valid reload annotation and a readiness
// probe on /data/current.
func checkExamples(base objects) check {
	return func(o objects) error {
		classes := map[string]bool{}
		for _, u := range base.ofKind("StorageClass") {
			classes[u.GetName()] = true
		}
		seen := map[string]bool{}
		errs := []error{exampleClaims(o, classes, seen)}
		for _, u := range o {
			spec, err := podSpecOf(u)
			if err != nil || spec == nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, examplePod(u, spec, seen))
		}
		for _, want := range []string{"Deployment", "StatefulSet", "inline", "hydra-ram", "affinity"} {
			if !seen[want] {
				errs = append(errs, fmt.Errorf("examples: none shows %s", want))
			}
		}
		return errors.Join(errs...)
	}
}

// exampleClaims checks every claim (and claim template) of a hydra class.
func exampleClaims(o objects, classes map[string]bool, seen map[string]bool) error {
	var claims []corev1.PersistentVolumeClaim
	for _, u := range o {
		switch u.GetKind() {
		case "PersistentVolumeClaim":
			c, err := convert[corev1.PersistentVolumeClaim](u)
			if err != nil {
				return err
			}
			claims = append(claims, *c)
		case "StatefulSet":
			s, err := convert[appsv1.StatefulSet](u)
			if err != nil {
				return err
			}
			claims = append(claims, s.Spec.VolumeClaimTemplates...)
		}
	}
	var errs []error
	for _, c := range claims {
		if c.Spec.StorageClassName == nil || !classes[*c.Spec.StorageClassName] {
			errs = append(errs, fmt.Errorf("PVC %s: storageClassName must be one of the base's classes", c.Name))
			continue
		}
		seen[*c.Spec.StorageClassName] = true
		ch := c.Annotations[driver.AnnotationChannel]
		if err := release.ValidateChannelName(ch); err != nil {
			errs = append(errs, fmt.Errorf("PVC %s: annotation %s %q: %w", c.Name, driver.AnnotationChannel, ch, err))
		}
	}
	return errors.Join(errs...)
}

// examplePod checks one pod or pod template and records what it shows.
func examplePod(u *unstructured.Unstructured, spec *corev1.PodSpec, seen map[string]bool) error {
	var errs []error
	what := u.GetKind() + " " + u.GetName()
	for _, v := range spec.Volumes {
		if v.CSI == nil {
			continue
		}
		seen["inline"] = true
		if v.CSI.Driver != driver.DefaultName {
			errs = append(errs, fmt.Errorf("%s: inline volume %s: driver %q", what, v.Name, v.CSI.Driver))
		}
		for k := range v.CSI.VolumeAttributes {
			if !knownParam(k) {
				errs = append(errs, fmt.Errorf("%s: inline volume %s: unknown attribute %q", what, v.Name, k))
			}
		}
		if err := release.ValidateChannelName(v.CSI.VolumeAttributes[driver.AttrChannel]); err != nil {
			errs = append(errs, fmt.Errorf("%s: inline volume %s: channel: %w", what, v.Name, err))
		}
	}
	if u.GetKind() != "Deployment" && u.GetKind() != "StatefulSet" {
		return errors.Join(errs...)
	}
	seen[u.GetKind()] = true
	tmpl, err := templateOf(u)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(spec.ReadinessGates, func(g corev1.PodReadinessGate) bool { return g.ConditionType == manager.ConditionDataReady }) {
		errs = append(errs, fmt.Errorf("%s: needs readiness gate %s, or rollouts flip it without drain", what, manager.ConditionDataReady))
	}
	if r := tmpl.Annotations[manager.AnnotationReload]; !reloadValue.MatchString(r) {
		errs = append(errs, fmt.Errorf("%s: annotation %s %q: want none, restart or http://:PORT/PATH", what, manager.AnnotationReload, r))
	}
	if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool {
		return c.ReadinessProbe != nil && c.ReadinessProbe.Exec != nil && strings.Contains(strings.Join(c.ReadinessProbe.Exec.Command, " "), "/data/current")
	}) {
		errs = append(errs, fmt.Errorf("%s: needs a readiness probe that reads /data/current", what))
	}
	errs = append(errs, exampleAffinity(what, spec, seen))
	return errors.Join(errs...)
}

// exampleAffinity checks the node affinity terms on the manager's ready
// labels: preferred only (a required one leaves pods Pending where no
// node holds the head yet), on a valid channel's key, In ["true"].
func exampleAffinity(what string, spec *corev1.PodSpec, seen map[string]bool) error {
	if spec.Affinity == nil || spec.Affinity.NodeAffinity == nil {
		return nil
	}
	na := spec.Affinity.NodeAffinity
	if req := na.RequiredDuringSchedulingIgnoredDuringExecution; req != nil {
		for _, term := range req.NodeSelectorTerms {
			for _, e := range term.MatchExpressions {
				if isReadyLabel(e.Key) {
					return fmt.Errorf("%s: required node affinity on %s: make it preferred, or pods wait for a node that has the data", what, e.Key)
				}
			}
		}
	}
	var errs []error
	for _, p := range na.PreferredDuringSchedulingIgnoredDuringExecution {
		for _, e := range p.Preference.MatchExpressions {
			if !isReadyLabel(e.Key) {
				continue
			}
			seen["affinity"] = true
			ch, _, _ := strings.Cut(e.Key, "."+manager.NodeLabelDomain+"/")
			if err := release.ValidateChannelName(ch); err != nil || e.Key != manager.ReadyLabel(ch) {
				errs = append(errs, fmt.Errorf("%s: node affinity key %q: want %s for a valid channel", what, e.Key, manager.ReadyLabel("CHANNEL")))
			}
			if e.Operator != corev1.NodeSelectorOpIn || !slices.Equal(e.Values, []string{manager.ReadyLabelValue}) {
				errs = append(errs, fmt.Errorf("%s: node affinity on %s: %s %v, want In [%s]", what, e.Key, e.Operator, e.Values, manager.ReadyLabelValue))
			}
		}
	}
	return errors.Join(errs...)
}

// isReadyLabel reports whether key is in the manager's Node label domain.
func isReadyLabel(key string) bool {
	prefix, _, _ := strings.Cut(key, "/")
	return strings.HasSuffix(prefix, "."+manager.NodeLabelDomain)
}
