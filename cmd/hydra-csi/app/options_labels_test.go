package app

import (
	"maps"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestNodeLabelsFlag: --node-labels is parsed into the labels the node
// reports, and refused at start naming the flag when it is not k=v pairs
// of valid Kubernetes labels.
func TestNodeLabelsFlag(t *testing.T) {
	for _, tc := range []struct {
		arg     string
		want    map[string]string
		wantErr string
	}{
		{"", nil, ""},
		{"pool=search", map[string]string{"pool": "search"}, ""},
		{"pool=search, topology.kubernetes.io/zone=a,gpu=", map[string]string{"pool": "search", "topology.kubernetes.io/zone": "a", "gpu": ""}, ""},
		{"pool", nil, `"pool" is not key=value`},
		{"=search", nil, "is not key=value"},
		{"pool=a,pool=b", nil, `label "pool" given twice`},
		{"pool=a b", nil, "--node-labels[pool]"},
		{"-pool=a", nil, "--node-labels"},
		{"example.com//pool=a", nil, "--node-labels"},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			o := DefaultOptions()
			o.NodeID, o.Manager = "node-a", "http://manager:8080"
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse([]string{"--node-labels=" + tc.arg}); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Validate = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			case tc.wantErr == "" && !maps.Equal(o.labels, tc.want):
				t.Errorf("labels %v, want %v", o.labels, tc.want)
			}
		})
	}
}
