package release

import (
	"fmt"
	"sort"
	"strings"
)

// Warm nodes and node budgets (docs/design.md §15): a channel can name
// the nodes that keep its head with no pod at all, and bound what each
// node keeps of it.

// WarmConfig names the nodes that keep a channel's head (and its rollout
// target) on disk or in RAM with no pod using it.
type WarmConfig struct {
	// NodeSelector matches a node's labels (the Kubernetes Node's, or the
	// ones the node plugin reports with --node-labels): every pair must be
	// there. Empty matches every node.
	NodeSelector map[string]string `json:"nodeSelector"`
	// Medium is MediumDisk (default) or MediumMemory.
	Medium string `json:"medium,omitempty"`
}

// Matches reports whether a node with labels is selected.
func (w *WarmConfig) Matches(labels map[string]string) bool {
	if w == nil {
		return false
	}
	for k, v := range w.NodeSelector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// MediumOrDefault is the medium warm nodes keep the head on.
func (w *WarmConfig) MediumOrDefault() string {
	if w == nil || w.Medium == "" {
		return MediumDisk
	}
	return w.Medium
}

// String shows the selector as k=v,k=v (sorted) and the medium.
func (w *WarmConfig) String() string {
	if w == nil {
		return "-"
	}
	pairs := make([]string, 0, len(w.NodeSelector))
	for k, v := range w.NodeSelector {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	sel := strings.Join(pairs, ",")
	if sel == "" {
		sel = "all nodes"
	}
	return sel + " (" + w.MediumOrDefault() + ")"
}

// MaxLabels bounds a selector and a node's reported labels.
const MaxLabels = 64

// Validate checks the selector's keys and values against Kubernetes'
// label syntax and the medium.
func (w *WarmConfig) Validate() error {
	if w == nil {
		return nil
	}
	switch w.Medium {
	case "", MediumDisk, MediumMemory:
	default:
		return invalid("warm.medium", w.Medium, `must be "disk" or "memory"`)
	}
	return validateLabels("warm.nodeSelector", w.NodeSelector)
}

// ValidateLabels checks a set of Kubernetes labels (keys and values).
func ValidateLabels(field string, labels map[string]string) error {
	return validateLabels(field, labels)
}

func validateLabels(field string, labels map[string]string) error {
	if len(labels) > MaxLabels {
		return invalid(field, "", "at most %d labels, got %d", MaxLabels, len(labels))
	}
	for k, v := range labels {
		if err := validateLabelKey(k); err != nil {
			return invalid(field, k, "%s", err)
		}
		if v != "" && !isLabelName(v) {
			return invalid(fmt.Sprintf("%s[%s]", field, k), v,
				"must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
		}
	}
	return nil
}

// validateLabelKey checks [prefix/]name: prefix a DNS-1123 subdomain of
// at most 253 characters, name as a label value but not empty.
func validateLabelKey(k string) error {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		name, prefix = prefix, ""
	}
	if hasPrefix {
		if prefix == "" || len(prefix) > 253 || ValidateNodeName(prefix) != nil {
			return fmt.Errorf("the prefix of a label key must be a DNS-1123 subdomain")
		}
	}
	if !isLabelName(name) {
		return fmt.Errorf("a label key's name must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
	}
	return nil
}

func isLabelName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return alnum(s[0]) && alnum(s[len(s)-1])
}
