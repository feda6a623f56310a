package release

import (
	"strings"
	"testing"
)

func TestWarmConfig(t *testing.T) {
	for _, tc := range []struct {
		w       *WarmConfig
		wantErr string
	}{
		{nil, ""},
		{&WarmConfig{}, ""},
		{&WarmConfig{NodeSelector: map[string]string{"pool": "search", "topology.kubernetes.io/zone": "a"}, Medium: MediumMemory}, ""},
		{&WarmConfig{NodeSelector: map[string]string{"pool": ""}}, ""},
		{&WarmConfig{Medium: "tape"}, "warm.medium"},
		{&WarmConfig{NodeSelector: map[string]string{"bad key": "x"}}, "warm.nodeSelector"},
		{&WarmConfig{NodeSelector: map[string]string{"Bad_Prefix/x": "x"}}, "warm.nodeSelector"},
		{&WarmConfig{NodeSelector: map[string]string{"pool": "-x"}}, "warm.nodeSelector[pool]"},
		{&WarmConfig{NodeSelector: map[string]string{strings.Repeat("a", 64): "x"}}, "warm.nodeSelector"},
	} {
		err := tc.w.Validate()
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Validate(%v) = %v, want error naming %q", tc.w, err, tc.wantErr)
		}
	}
	w := &WarmConfig{NodeSelector: map[string]string{"pool": "search"}}
	if !w.Matches(map[string]string{"pool": "search", "x": "y"}) || w.Matches(map[string]string{"pool": "web"}) || w.Matches(nil) {
		t.Error("Matches does not require every pair of the selector")
	}
	if !(&WarmConfig{}).Matches(nil) || (*WarmConfig)(nil).Matches(map[string]string{"a": "b"}) {
		t.Error("an empty selector must match every node, a nil config none")
	}
}
