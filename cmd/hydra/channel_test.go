package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// decodeAs parses CLI output in one of the formats into v; the table form
// has no structure to parse and is checked by the caller.
func decodeAs(t *testing.T, format, out string, v any) {
	t.Helper()
	switch format {
	case outputJSON:
		decodeJSON(t, out, v)
	case outputYAML:
		if err := yaml.UnmarshalStrict([]byte(out), v); err != nil {
			t.Fatalf("decode %T from YAML: %v\n%s", v, err, out)
		}
	}
}

func TestChannelCommands(t *testing.T) {
	h := newHarness(t)
	wantCfg := release.Config{
		Keep:     3,
		MaxAge:   release.Duration{Duration: 48 * time.Hour},
		NodeKeep: 4,
		Rollout: release.RolloutPolicy{
			MaxUnavailable: 2,
			Drain:          release.Duration{Duration: 10 * time.Second},
			ReloadTimeout:  release.Duration{Duration: time.Minute},
		},
	}
	for _, format := range []string{outputTable, outputJSON, outputYAML} {
		t.Run(format, func(t *testing.T) {
			h := h.sub(t)
			name := "chan-" + format
			out := h.ok("-o", format, "channel", "create", name, "--keep", "3", "--max-age", "48h",
				"--node-keep", "4", "--max-unavailable", "2", "--drain", "10s", "--reload-timeout", "1m")
			if format == outputTable {
				wantText(t, out, "channel "+name+" created", "keep 3, max-age 48h0m0s, node-keep 4",
					"max-unavailable 2, drain 10s, reload-timeout 1m0s")
			} else {
				var ch release.Channel
				decodeAs(t, format, out, &ch)
				if ch.Name != name || ch.Config != wantCfg {
					t.Errorf("create printed %+v, want name %s config %+v", ch, name, wantCfg)
				}
			}
			// The manager holds what the flags said, whatever was printed.
			if got := h.channel(name).Config; got != wantCfg {
				t.Errorf("stored config %+v, want %+v", got, wantCfg)
			}

			h.publishStub(name, "v1", false)
			checkList(t, h, format, name)
			checkShow(t, h, format, name)

			out = h.ok("-o", format, "channel", "delete", name)
			if format == outputTable {
				wantText(t, out, "channel "+name+" deleted")
			} else {
				var d deleted
				decodeAs(t, format, out, &d)
				if d != (deleted{Channel: name, Deleted: true}) {
					t.Errorf("delete printed %+v", d)
				}
			}
			if _, err := h.admin.GetChannel(t.Context(), name); !client.IsNotFound(err) {
				t.Errorf("after delete, GetChannel = %v, want not found", err)
			}
		})
	}
}

func checkList(t *testing.T, h *harness, format, name string) {
	t.Helper()
	out := h.ok("-o", format, "channel", "ls")
	if format == outputTable {
		wantText(t, out, "NAME", "HEAD", name)
		return
	}
	var list api.ChannelList
	decodeAs(t, format, out, &list)
	i := slices.IndexFunc(list.Channels, func(c release.Channel) bool { return c.Name == name })
	if i < 0 || list.Channels[i].Head != "v1" || list.Channels[i].ReleaseCount != 1 {
		t.Errorf("channel ls = %+v, want %s with head v1 and 1 release", list.Channels, name)
	}
}

func checkShow(t *testing.T, h *harness, format, name string) {
	t.Helper()
	out := h.ok("-o", format, "channel", "show", name)
	if format == outputTable {
		wantText(t, out, "Channel:", name, "Head:", "v1", "RELEASES", "1.0 MiB", "HEAD", "NODES", "PODS")
		return
	}
	var d api.ChannelDetail
	decodeAs(t, format, out, &d)
	if d.Channel.Name != name || d.Channel.Head != "v1" || len(d.Releases) != 1 || d.Releases[0].Bytes != 1<<20 {
		t.Errorf("channel show = %+v", d)
	}
}

func TestChannelDefaultsAndErrors(t *testing.T) {
	h := newHarness(t)
	h.ok("channel", "create", "plain")
	if got, want := h.channel("plain").Config, (release.Config{}).WithDefaults(); got != want {
		t.Errorf("config without flags = %+v, want the defaults %+v", got, want)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"channel", "create", "plain"}, []string{"already exists"}},
		{[]string{"channel", "create", "Bad_Name"}, []string{"Bad_Name", "DNS-1123"}},
		{[]string{"channel", "create", "neg", "--keep", "-1"}, []string{"keep", "-1"}},
		{[]string{"channel", "show", "missing"}, []string{"missing", "not found"}},
		{[]string{"channel", "delete", "missing"}, []string{"not found"}},
		{[]string{"channel", "create"}, []string{"channel create: expected NAME, got no arguments"}},
		{[]string{"channel", "show", "a", "b"}, []string{"expected NAME, got 2 arguments"}},
		{[]string{"channel", "lst"}, []string{`unknown command "lst"`}},
		{[]string{"-o", "xml", "channel", "ls"}, []string{`-o "xml"`}},
		{[]string{"channel", "create", "x", "--keep", "many"}, []string{`"many"`, "--keep"}},
		{[]string{"channel", "create", "x", "--drain", "5"}, []string{`"5"`, "--drain"}},
		{[]string{"--timeout", "-1s", "channel", "ls"}, []string{"--timeout"}},
		{[]string{"channel", "ls", "--bogus"}, []string{"unknown flag: --bogus"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h.sub(t).fails(tt.args, tt.want...)
		})
	}
}

// wantText checks that out contains every string.
func wantText(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output does not contain %q:\n%s", w, out)
		}
	}
}
