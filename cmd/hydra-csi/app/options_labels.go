package app

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hydra-csi/hydra/pkg/release"
)

// labelOptions is --node-labels: the labels the node reports to the
// manager, which warm channels' selectors match when the manager does not
// see the node's Kubernetes Node (docs/node.md).
type labelOptions struct {
	NodeLabels string

	labels map[string]string
}

func (o *labelOptions) addLabelFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.NodeLabels, "node-labels", o.NodeLabels, "this node's labels, k=v[,k=v], reported to the manager for warm channels' node selectors; the Kubernetes Node's labels win when the manager sees the Node")
}

// validateLabels parses --node-labels into labels.
func (o *labelOptions) validateLabels() error {
	o.labels = nil
	if strings.TrimSpace(o.NodeLabels) == "" {
		return nil
	}
	labels := map[string]string{}
	for _, pair := range strings.Split(o.NodeLabels, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		switch {
		case !ok || k == "":
			return fmt.Errorf("--node-labels %q: %q is not key=value", o.NodeLabels, pair)
		case hasKey(labels, k):
			return fmt.Errorf("--node-labels %q: label %q given twice", o.NodeLabels, k)
		}
		labels[k] = v
	}
	if err := release.ValidateLabels("--node-labels", labels); err != nil {
		return err
	}
	o.labels = labels
	return nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
