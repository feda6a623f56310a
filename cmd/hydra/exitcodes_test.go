package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes runs the CLI once per row of the exit code table in
// docs/publishing.md, against a real manager.
func TestExitCodes(t *testing.T) {
	h := newHarness(t)
	fd := newFileData(t)
	h.createChannel("codes")
	data := "data=" + fd.dataURI
	h.ok("publish", "codes", "--dataset", data) // auto: v10
	rows := []struct {
		name string
		env  map[string]string
		args []string
		code int
	}{
		{"done", nil, []string{"publish", "codes", "--dataset", data, "--version", "v2", "--no-promote"}, exitOK},
		{"other failure: a source cannot be listed", nil, []string{"publish", "codes", "--dataset", "data=file://" + fd.root + "/no-such-dir/", "--version", "v4"}, exitFailed},
		{"usage: missing argument", nil, []string{"release", "show", "codes"}, exitUsage},
		{"usage: unknown flag", nil, []string{"publish", "codes", "--no-such-flag"}, exitUsage},
		{"nothing new under auto", nil, []string{"publish", "codes", "--dataset", data}, exitNothingNew},
		{"not found", nil, []string{"release", "show", "codes", "v9"}, exitNotFound},
		{"invalid: refused by the CLI", nil, []string{"publish", "codes", "--dataset", "data=file://" + fd.root + "/empty/", "--version", "v3"}, exitInvalid},
		{"invalid: refused by the manager", nil, []string{"channel", "create", "Bad_Name"}, exitInvalid},
		{"unauthorized", map[string]string{"HYDRA_TOKEN": "wrong-token"}, []string{"release", "ls", "codes"}, exitUnauthorized},
		{"unreachable", map[string]string{"HYDRA_MANAGER": "http://127.0.0.1:1"}, []string{"release", "ls", "codes"}, exitUnreachable},
		{"conflict: the head cannot be removed", nil, []string{"release", "rm", "codes", "v10"}, exitConflict},
		{"conflict: the version exists", nil, []string{"publish", "codes", "--dataset", data, "--version", "v10"}, exitConflict},
	}
	if err := os.Mkdir(filepath.Join(fd.root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			h := h.sub(t)
			for k, v := range r.env {
				h.env[k] = v
			}
			res := h.run(r.args...)
			if res.code != r.code {
				t.Errorf("hydra %s: exit %d, want %d; stderr %s", strings.Join(r.args, " "), res.code, r.code, res.stderr)
			}
			if r.code != exitOK {
				checkFailure(t, r.args, res)
			}
		})
	}
}
