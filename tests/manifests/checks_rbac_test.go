package manifests_test

import (
	"errors"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// cluster is a permission in every namespace.
func cluster(group, resource string, verbs ...string) []permission {
	out := make([]permission, len(verbs))
	for i, v := range verbs {
		out[i] = permission{group: group, resource: resource, verb: v}
	}
	return out
}

// Each component's needs: the controller's from external-provisioner
// v6.3.0's deploy/kubernetes/rbac.yaml and pkg/driver/pvc.go, the
// manager's from docs/manager.md (Rollouts).
var (
	controllerNeeds = slices.Concat(
		cluster("", "persistentvolumes", "get", "list", "watch", "create", "patch", "delete"),
		cluster("", "persistentvolumeclaims", "get", "list", "watch", "update"),
		cluster("storage.k8s.io", "storageclasses", "get", "list", "watch"),
		cluster("", "events", "list", "watch", "create", "update", "patch"),
		cluster("storage.k8s.io", "csinodes", "get", "list", "watch"),
		cluster("", "nodes", "get", "list", "watch"),
		cluster("storage.k8s.io", "volumeattachments", "get", "list", "watch"),
	)
	managerNeeds = slices.Concat(
		cluster("", "pods", "get", "list", "watch"),
		cluster("", "pods/status", "patch"),
		cluster("", "pods/eviction", "create"),
		cluster("discovery.k8s.io", "endpointslices", "list", "watch"),
		cluster("", "events", "create", "patch"),
		// The PVCs behind the views a node's failed download affects,
		// for their Warning Events.
		cluster("", "persistentvolumeclaims", "get"),
		// The Nodes' labels, through an informer, for peer distribution
		// and warm selectors; patch for the channels' ready labels.
		cluster("", "nodes", "list", "watch", "patch"),
	)
	// What the manager must not do beyond its needs: its informer on
	// Nodes lists and watches, and it patches its own labels (a merge
	// patch needs no get), nothing more.
	managerMayNot = slices.Concat(
		cluster("", "nodes", "get", "create", "update", "delete"),
		cluster("", "nodes/status", "patch", "update"),
	)
	// Nobody in Hydra reads Secrets through the API, or writes pods.
	nobodyMay = slices.Concat(
		cluster("", "secrets", "get", "list", "watch"),
		cluster("", "pods", "create", "update", "delete"),
		cluster("", "pods/exec", "create"),
	)
)

// checkRBAC: each ServiceAccount may do what its component needs and no
// more than the named excesses; no role grants wildcards; the node plugin
// has no API access at all.
func checkRBAC(o objects) error {
	var errs []error
	ns := namespaceOf(o, "ServiceAccount", controllerSA)
	for _, p := range controllerNeeds {
		if !allowed(o, ns, controllerSA, p) {
			errs = append(errs, fmt.Errorf("ServiceAccount %s: may not %s (csi-provisioner or hydra-csi need it)", controllerSA, p))
		}
	}
	leader := permission{"coordination.k8s.io", "leases", "update", ns}
	if !allowed(o, ns, controllerSA, leader) {
		errs = append(errs, fmt.Errorf("ServiceAccount %s: may not %s: csi-provisioner's leader election", controllerSA, leader))
	}
	mns := namespaceOf(o, "ServiceAccount", managerSA)
	for _, p := range managerNeeds {
		if !allowed(o, mns, managerSA, p) {
			errs = append(errs, fmt.Errorf("ServiceAccount %s: may not %s (the rollout controller, peer distribution or the node labels need it)", managerSA, p))
		}
	}
	for _, p := range managerMayNot {
		if allowed(o, mns, managerSA, p) {
			errs = append(errs, fmt.Errorf("ServiceAccount %s: may %s, more than it needs", managerSA, p))
		}
	}
	for _, sa := range []string{nodeSA, controllerSA, managerSA} {
		for _, p := range nobodyMay {
			if allowed(o, namespaceOf(o, "ServiceAccount", sa), sa, p) {
				errs = append(errs, fmt.Errorf("ServiceAccount %s: may %s, which nothing of Hydra does", sa, p))
			}
		}
	}
	errs = append(errs, noWildcards(o), nodeNoAPI(o))
	return errors.Join(errs...)
}

// namespaceOf is the namespace of the object of kind and name, "" when
// it is not there.
func namespaceOf(o objects, kind, name string) string {
	if u := o.get(kind, name); u != nil {
		return u.GetNamespace()
	}
	return ""
}

// noWildcards: no Role or ClusterRole grants "*".
func noWildcards(o objects) error {
	var errs []error
	for _, kind := range []string{"Role", "ClusterRole"} {
		for _, u := range o.ofKind(kind) {
			r, err := convert[rbacv1.ClusterRole](u) // a Role has the same shape
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, rule := range r.Rules {
				if slices.Contains(rule.Verbs, "*") || slices.Contains(rule.Resources, "*") || slices.Contains(rule.APIGroups, "*") {
					errs = append(errs, fmt.Errorf("%s %s: grants a wildcard (%v)", kind, u.GetName(), rule))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// nodeNoAPI: the node plugin never calls the API, so it is bound to no
// role and gets no token.
func nodeNoAPI(o objects) error {
	ns := namespaceOf(o, "ServiceAccount", nodeSA)
	var errs []error
	for _, kind := range []string{"RoleBinding", "ClusterRoleBinding"} {
		for _, u := range o.ofKind(kind) {
			b, err := convert[rbacv1.RoleBinding](u) // same shape as a ClusterRoleBinding
			if err == nil && boundTo(b.Subjects, ns, nodeSA) {
				errs = append(errs, fmt.Errorf("%s %s: binds %s, which calls no Kubernetes API", kind, u.GetName(), nodeSA))
			}
		}
	}
	ds, err := typed[appsv1.DaemonSet](o, "DaemonSet", nodeDS)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	sa, err := typed[corev1.ServiceAccount](o, "ServiceAccount", nodeSA)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if ds.Spec.Template.Spec.ServiceAccountName != nodeSA {
		errs = append(errs, fmt.Errorf("DaemonSet %s: serviceAccountName %q: want %s", nodeDS, ds.Spec.Template.Spec.ServiceAccountName, nodeSA))
	}
	// The pod's setting wins over the ServiceAccount's.
	mounted := sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken
	if pod := ds.Spec.Template.Spec.AutomountServiceAccountToken; pod != nil {
		mounted = *pod
	}
	if mounted {
		errs = append(errs, fmt.Errorf("DaemonSet %s: mounts an API token it never uses (set automountServiceAccountToken false)", nodeDS))
	}
	return errors.Join(errs...)
}

// permission is one thing a ServiceAccount must be allowed to do.
type permission struct {
	group, resource, verb string
	// namespace is where; "" means in every namespace (cluster-wide).
	namespace string
}

func (p permission) String() string {
	where := "cluster-wide"
	if p.namespace != "" {
		where = "in " + p.namespace
	}
	res := p.resource
	if p.group != "" {
		res = p.group + "/" + res
	}
	return fmt.Sprintf("%s %s %s", p.verb, res, where)
}

// allowed evaluates RBAC over the rendered objects: whether the
// ServiceAccount ns/name may do p, through a ClusterRoleBinding (any
// namespace) or a RoleBinding in p's namespace.
func allowed(o objects, ns, name string, p permission) bool {
	for _, b := range o.ofKind("ClusterRoleBinding") {
		crb, err := convert[rbacv1.ClusterRoleBinding](b)
		if err == nil && boundTo(crb.Subjects, ns, name) && roleAllows(o, "", crb.RoleRef, p) {
			return true
		}
	}
	if p.namespace == "" {
		return false
	}
	for _, b := range o.ofKind("RoleBinding") {
		rb, err := convert[rbacv1.RoleBinding](b)
		if err == nil && rb.Namespace == p.namespace && boundTo(rb.Subjects, ns, name) && roleAllows(o, rb.Namespace, rb.RoleRef, p) {
			return true
		}
	}
	return false
}

func boundTo(subjects []rbacv1.Subject, ns, name string) bool {
	for _, s := range subjects {
		if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == ns && s.Name == name {
			return true
		}
	}
	return false
}

// roleAllows reports whether the role ref points at (a Role in ns, or a
// ClusterRole) grants p.
func roleAllows(o objects, ns string, ref rbacv1.RoleRef, p permission) bool {
	var rules []rbacv1.PolicyRule
	switch ref.Kind {
	case "ClusterRole":
		cr, err := typed[rbacv1.ClusterRole](o, "ClusterRole", ref.Name)
		if err != nil {
			return false
		}
		rules = cr.Rules
	case "Role":
		for _, u := range o.ofKind("Role") {
			if r, err := convert[rbacv1.Role](u); err == nil && r.Name == ref.Name && r.Namespace == ns {
				rules = r.Rules
			}
		}
	}
	for _, r := range rules {
		if hasOrStar(r.APIGroups, p.group) && hasOrStar(r.Resources, p.resource) && hasOrStar(r.Verbs, p.verb) && len(r.ResourceNames) == 0 {
			return true
		}
	}
	return false
}

func hasOrStar(list []string, v string) bool {
	for _, x := range list {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}
