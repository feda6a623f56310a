package manager_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestConfigPatch(t *testing.T) {
	m, _, _ := newManager(t)
	ctx := context.Background()
	mustCreate(t, m, "cfg", release.Config{})
	tests := []struct {
		name    string
		patch   string
		check   func(release.Config) bool
		changes []string
		field   string // the FieldError's field when refused
	}{
		{"retention", `{"keep": 5, "nodeKeep": 3}`, func(c release.Config) bool { return c.Keep == 5 && c.NodeKeep == 3 },
			[]string{"keep: 10 -> 5", "nodeKeep: 2 -> 3"}, ""},
		{"nested rollout setting", `{"rollout": {"drain": "1m"}}`, func(c release.Config) bool {
			return c.Rollout.Drain.Duration == time.Minute && c.Rollout.MaxUnavailable == 1
		}, []string{`rollout.drain: "30s" -> "1m0s"`}, ""},
		{"completeness", `{"requireMarker": "_SUCCESS", "minObjects": 2}`, func(c release.Config) bool {
			return c.RequireMarker == "_SUCCESS" && c.MinObjects == 2
		}, []string{`minObjects: unset -> 2`, `requireMarker: unset -> "_SUCCESS"`}, ""},
		{"null resets to the default", `{"keep": null}`, func(c release.Config) bool { return c.Keep == release.DefaultKeep },
			[]string{"keep: 5 -> 10"}, ""},
		{"no change", `{"keep": 10}`, func(c release.Config) bool { return c.Keep == 10 }, nil, ""},
		{"unknown setting", `{"kepe": 1}`, nil, nil, "kepe"},
		{"bad value", `{"keep": -1}`, nil, nil, "keep"},
		{"wrong type", `{"nodeKeep": "two"}`, nil, nil, "nodeKeep"},
		{"bad marker", `{"requireMarker": "../x"}`, nil, nil, "requireMarker"},
		{"not an object", `[1]`, nil, nil, "config"},
		{"bad duration", `{"rollout": {"drain": "soon"}}`, nil, nil, "rollout.drain"},
		{"unknown nested setting", `{"rollout": {"dran": "1m"}}`, nil, nil, "rollout.dran"},
		{"warm", `{"warm": {"nodeSelector": {"pool": "search", "topology.kubernetes.io/zone": "a"}}, "nodeQuota": 1024}`, func(c release.Config) bool {
			return c.Warm.String() == "pool=search,topology.kubernetes.io/zone=a (disk)" && c.NodeQuota == 1024
		}, []string{`nodeQuota: unset -> 1024`, `warm.nodeSelector.pool: unset -> "search"`, `warm.nodeSelector.topology.kubernetes.io/zone: unset -> "a"`}, ""},
		{"warm selector key dropped, medium set", `{"warm": {"nodeSelector": {"topology.kubernetes.io/zone": null}, "medium": "memory"}}`, func(c release.Config) bool {
			return c.Warm.String() == "pool=search (memory)"
		}, []string{`warm.medium: unset -> "memory"`, `warm.nodeSelector.topology.kubernetes.io/zone: "a" -> unset`}, ""},
		{"bad warm label key", `{"warm": {"nodeSelector": {"-pool": "search"}}}`, nil, nil, "warm.nodeSelector"},
		{"bad warm label value", `{"warm": {"nodeSelector": {"pool": "a b"}}}`, nil, nil, "warm.nodeSelector[pool]"},
		{"warm label value not a string", `{"warm": {"nodeSelector": {"pool": 3}}}`, nil, nil, "warm.nodeSelector.pool"},
		{"bad warm medium", `{"warm": {"medium": "tape"}}`, nil, nil, "warm.medium"},
		{"negative node quota", `{"nodeQuota": -1}`, nil, nil, "nodeQuota"},
		{"warm off", `{"warm": null, "nodeQuota": 0}`, func(c release.Config) bool { return c.Warm == nil && c.NodeQuota == 0 },
			[]string{`nodeQuota: 1024 -> unset`, `warm.medium: "memory" -> unset`, `warm.nodeSelector.pool: "search" -> unset`}, ""},
		{"warm on every node", `{"warm": {"nodeSelector": {}}}`, func(c release.Config) bool { return c.Warm != nil && len(c.Warm.NodeSelector) == 0 },
			[]string{`warm.nodeSelector: unset -> {}`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := m.GetChannel(ctx, "cfg")
			ch, changes, err := m.PatchConfig(ctx, "cfg", []byte(tt.patch))
			if tt.field != "" {
				var fe *release.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("PatchConfig(%s) = %v, want a FieldError on %s", tt.patch, err, tt.field)
				}
				if after, _ := m.GetChannel(ctx, "cfg"); !reflect.DeepEqual(after.Channel.Config, before.Channel.Config) {
					t.Errorf("a refused patch changed the config: %+v", after.Channel.Config)
				}
				return
			}
			if err != nil || !tt.check(ch.Config) {
				t.Fatalf("PatchConfig(%s) = %+v, %v", tt.patch, ch.Config, err)
			}
			var got []string
			for _, c := range changes {
				got = append(got, c.Setting+": "+c.Old+" -> "+c.New)
			}
			if strings.Join(got, "|") != strings.Join(tt.changes, "|") {
				t.Errorf("changes = %q, want %q", got, tt.changes)
			}
		})
	}
}
