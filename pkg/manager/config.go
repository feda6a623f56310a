package manager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/release"
)

// PatchConfig applies a JSON merge patch to a channel's config: a key sets
// a setting, null resets it to its default, an object patches the nested
// settings. The result is validated as a whole; an unknown or bad setting
// is refused naming it, and nothing is stored. It returns the channel and
// what changed.
func (m *Manager) PatchConfig(ctx context.Context, name string, patch []byte) (release.Channel, []api.ConfigChange, error) {
	if err := release.ValidateChannelName(name); err != nil {
		return release.Channel{}, nil, err
	}
	var changes []api.ConfigChange
	ch, err := m.store.UpdateChannel(ctx, name, func(ch *release.Channel) error {
		next, err := applyConfigPatch(ch.Config, patch)
		if err != nil {
			return err
		}
		if changes, err = configChanges(ch.Config, next); err != nil {
			return err
		}
		if len(changes) > 0 {
			ch.Config = next
			m.touch(ch)
		}
		return nil
	})
	if err != nil {
		return release.Channel{}, nil, err
	}
	for _, c := range changes {
		m.logger().Info("channel setting changed", "channel", name, "setting", c.Setting, "old", c.Old, "new", c.New, "by", actor(ctx))
	}
	return ch, changes, nil
}

// applyConfigPatch merges patch (RFC 7386) into cfg's JSON and decodes
// the result strictly, then fills defaults and validates.
func applyConfigPatch(cfg release.Config, patch []byte) (release.Config, error) {
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return cfg, release.NewFieldError("config", "", "must be a JSON object of settings (a merge patch)")
	}
	if err := checkSettings(nil, p); err != nil {
		return cfg, err
	}
	doc, err := toMap(cfg)
	if err != nil {
		return cfg, err
	}
	mergePatch(doc, p)
	raw, err := json.Marshal(doc)
	if err != nil {
		return cfg, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var next release.Config
	if err := dec.Decode(&next); err != nil {
		return cfg, release.NewFieldError("config", "", settingReason(err))
	}
	next = next.WithDefaults()
	if err := next.Validate(); err != nil {
		return cfg, err
	}
	return next, nil
}

// checkSettings decodes each setting of a patch on its own, so that an
// unknown setting or a bad value is refused naming its path. The path is
// kept as parts, not split on dots: a label key of a warm selector
// (topology.kubernetes.io/zone) has dots of its own.
func checkSettings(parents []string, patch map[string]any) error {
	for k, v := range patch {
		parts := append(slices.Clip(parents), k)
		if sub, ok := v.(map[string]any); ok {
			if err := checkSettings(parts, sub); err != nil {
				return err
			}
			continue
		}
		if v == nil {
			continue
		}
		// Rebuild the one setting inside its parents: {"rollout":{"drain":v}}.
		doc := any(v)
		for i := len(parts) - 1; i >= 0; i-- {
			doc = map[string]any{parts[i]: doc}
		}
		raw, _ := json.Marshal(doc)
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var c release.Config
		if err := dec.Decode(&c); err != nil {
			return release.NewFieldError(strings.Join(parts, "."), "", settingReason(err))
		}
	}
	return nil
}

// settingReason says why one setting's value did not decode.
func settingReason(err error) string {
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typ):
		return fmt.Sprintf("expected %s, got JSON %s", typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "is not a channel setting (see hydra channel set --help)"
	}
	return err.Error()
}

func toMap(v any) (map[string]any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(raw, &m)
}

// mergePatch applies patch to doc in place (RFC 7386).
func mergePatch(doc, patch map[string]any) {
	for k, v := range patch {
		sub, isObj := v.(map[string]any)
		cur, curObj := doc[k].(map[string]any)
		switch {
		case v == nil:
			delete(doc, k)
		case isObj && curObj:
			mergePatch(cur, sub)
		case isObj:
			fresh := map[string]any{}
			mergePatch(fresh, sub)
			doc[k] = fresh
		default:
			doc[k] = v
		}
	}
}

// configChanges lists the settings whose values differ, by JSON path.
func configChanges(old, next release.Config) ([]api.ConfigChange, error) {
	a, err := toMap(old)
	if err != nil {
		return nil, err
	}
	b, err := toMap(next)
	if err != nil {
		return nil, err
	}
	flatA, flatB := map[string]any{}, map[string]any{}
	flatten("", a, flatA)
	flatten("", b, flatB)
	var out []api.ConfigChange
	for k := range union(flatA, flatB) {
		if !reflect.DeepEqual(flatA[k], flatB[k]) {
			out = append(out, api.ConfigChange{Setting: k, Old: jsonText(flatA[k]), New: jsonText(flatB[k])})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Setting < out[j].Setting })
	return out, nil
}

// flatten lists the settings of m by JSON path. An empty object is a
// setting of its own: a warm selector of no labels (every node) differs
// from no warm selector.
func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = v
	}
}

func union(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func jsonText(v any) string {
	if v == nil {
		return "unset"
	}
	raw, _ := json.Marshal(v)
	return string(raw)
}
