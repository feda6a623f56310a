package manager

import (
	"testing"
)

// TestLabelPatch: the merge patch adds and changes the wanted labels,
// nulls the owned ones no longer wanted, and never names a label outside
// the domain.
func TestLabelPatch(t *testing.T) {
	ready := ReadyLabel("c")
	for _, tc := range []struct {
		name       string
		have, want map[string]string
		patch      string
	}{
		{"nothing to do", map[string]string{"pool": "a", ready: "true"}, map[string]string{ready: "true"}, ""},
		{"add", map[string]string{"pool": "a"}, map[string]string{ready: "true"}, `{"metadata":{"labels":{"c.channels.hydra.csi.dev/ready":"true"}}}`},
		{"remove owned only", map[string]string{"pool": "a", ready: "true", "x.other.dev/ready": "true", "channels.hydra.csi.dev/ready": "true"}, nil,
			`{"metadata":{"labels":{"c.channels.hydra.csi.dev/ready":null}}}`},
		{"change a value", map[string]string{ready: "false"}, map[string]string{ready: "true"}, `{"metadata":{"labels":{"c.channels.hydra.csi.dev/ready":"true"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(labelPatch(tc.have, tc.want)); got != tc.patch {
				t.Errorf("labelPatch(%v, %v) = %s, want %s", tc.have, tc.want, got, tc.patch)
			}
		})
	}
}
