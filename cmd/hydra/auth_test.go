package main

import (
	"testing"
)

// TestAuth runs the CLI with each way of giving a token against a manager
// that checks them.
func TestAuth(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("other")
	publish := func(channel string) []string {
		return []string{"publish", channel, "--dataset", "data=" + fd.dataURI, "--version", "v1"}
	}

	tests := []struct {
		name string
		env  map[string]string // overrides of the harness environment
		args []string
		want []string // empty: must succeed
	}{
		{name: "wrong token", env: map[string]string{"HYDRA_TOKEN": "not-a-token-at-all"},
			args: []string{"channel", "ls"}, want: []string{"unknown bearer token", "--token"}},
		{name: "no token", env: map[string]string{"HYDRA_TOKEN": ""},
			args: []string{"channel", "ls"}, want: []string{"missing bearer token"}},
		{name: "flag beats environment", env: map[string]string{"HYDRA_TOKEN": "not-a-token-at-all"},
			args: []string{"--token", readerToken, "channel", "ls"}},
		{name: "token file in the manager's CSV format",
			args: []string{"--token-file", writeFile(t, "token", "# mine\n\n"+readerToken+",reader\n"), "channel", "ls"}},
		{name: "token file missing", args: []string{"--token-file", "/nonexistent/token", "channel", "ls"},
			want: []string{"--token-file", "/nonexistent/token"}},
		{name: "empty token file", args: []string{"--token-file", writeFile(t, "empty", "# nothing\n"), "channel", "ls"},
			want: []string{"no token in the file"}},
		{name: "token and token file", args: []string{"--token", adminToken, "--token-file", "/x", "channel", "ls"},
			want: []string{"--token and --token-file"}},
		{name: "reader cannot create", env: map[string]string{"HYDRA_TOKEN": readerToken},
			args: []string{"channel", "create", "team-x"}, want: []string{"role reader", "may not"}},
		{name: "publisher creates in scope", env: map[string]string{"HYDRA_TOKEN": publisherToken},
			args: []string{"channel", "create", "team-a"}},
		{name: "publisher publishes in scope", env: map[string]string{"HYDRA_TOKEN": publisherToken},
			args: publish("team-a")},
		{name: "publisher out of scope", env: map[string]string{"HYDRA_TOKEN": publisherToken},
			args: publish("other"), want: []string{`scope "team-*"`, "may not change channel other"}},
		{name: "publisher cannot delete", env: map[string]string{"HYDRA_TOKEN": publisherToken},
			args: []string{"channel", "delete", "team-a"}, want: []string{"may not administer"}},
		{name: "manager flag beats environment", env: map[string]string{"HYDRA_MANAGER": "http://127.0.0.1:1"},
			args: []string{"--manager", h.url, "channel", "ls"}},
		{name: "unreachable manager", env: map[string]string{"HYDRA_MANAGER": "http://127.0.0.1:1"},
			args: []string{"channel", "ls"}, want: []string{"127.0.0.1:1", "connection refused"}},
		{name: "bad manager URL", args: []string{"--manager", "ftp://x", "channel", "ls"},
			want: []string{`"ftp://x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.sub(t)
			for k, v := range tt.env {
				h.env[k] = v
			}
			if len(tt.want) == 0 {
				h.ok(tt.args...)
				return
			}
			h.fails(tt.args, tt.want...)
		})
	}
	// The out-of-scope publish changed nothing.
	if ch := h.channel("other"); ch.Head != "" || ch.ReleaseCount != 0 {
		t.Errorf("channel other after a refused publish: %+v", ch)
	}
}
