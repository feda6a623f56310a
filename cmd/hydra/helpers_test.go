package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/release"
)

// Tokens of the test manager's token file (docs/design.md §9 format).
const (
	adminToken     = "admin-token-0123456789abcdef"
	publisherToken = "publisher-token-0123456789abcdef" // scope team-*
	readerToken    = "reader-token-0123456789abcdef"
	nodeToken      = "node-token-0123456789abcdef"
)

// harness is a real manager (in-process, bbolt store, token auth) and a
// way to run the CLI against it with captured output.
type harness struct {
	t   *testing.T
	url string
	// admin is a Go client for setting up and checking state, independent
	// of the CLI under test.
	admin *client.Client
	node  *client.Client
	// env is the CLI's environment; tests change it per run.
	env map[string]string
}

// newHarness starts a manager with a token file and returns a harness whose
// CLI environment points at it as admin.
func newHarness(t *testing.T) *harness {
	t.Helper()
	tokenFile := writeFile(t, "tokens.csv", strings.Join([]string{
		"# test tokens",
		adminToken + ",admin",
		publisherToken + ",publisher,team-*",
		readerToken + ",reader",
		nodeToken + ",node",
	}, "\n"))
	tokens, err := auth.LoadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	url := startManager(t, tokens)
	h := &harness{t: t, url: url, env: map[string]string{"HYDRA_MANAGER": url, "HYDRA_TOKEN": adminToken}}
	h.admin = newClient(t, url, adminToken)
	h.node = newClient(t, url, nodeToken)
	return h
}

// sub returns the harness for a subtest: same manager, its own t and a
// copy of the environment.
func (h *harness) sub(t *testing.T) *harness {
	c := *h
	c.t = t
	c.env = maps.Clone(h.env)
	return &c
}

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startManager runs the real manager on a fresh bbolt file behind a
// loopback HTTP server; everything stops in t.Cleanup.
func startManager(t *testing.T, tokens *auth.Tokens) string {
	t.Helper()
	return managertest.Start(t, managertest.Options{HTTP: httpapi.Options{Tokens: tokens}}).URL
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// run executes the CLI in-process with the harness environment.
func (h *harness) run(args ...string) result {
	return h.runCtx(h.t.Context(), nil, args...)
}

// runCtx runs the CLI with ctx, writing stdout also to tee when not nil.
func (h *harness) runCtx(ctx context.Context, tee func([]byte), args ...string) result {
	return h.runWith(ctx, tee, nil, args...)
}

// runWith is runCtx with the app's clock or terminal detection changed
// by configure.
func (h *harness) runWith(ctx context.Context, tee func([]byte), configure func(*app), args ...string) result {
	h.t.Helper()
	var stdout, stderr bytes.Buffer
	out := &teeWriter{buf: &stdout, tee: tee}
	env := func(k string) string { return h.env[k] }
	a := newApp(out, &stderr, env)
	if configure != nil {
		configure(a)
	}
	code := a.execute(ctx, args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

type teeWriter struct {
	buf *bytes.Buffer
	tee func([]byte)
}

func (w *teeWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	if w.tee != nil {
		w.tee(p)
	}
	return n, err
}

// ok runs the CLI and fails the test unless it exits 0 with nothing on
// stderr; it returns stdout.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("hydra %s: exit %d, stderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	// Success is quiet on stderr: no stray SDK warnings or log lines.
	if r.stderr != "" {
		h.t.Errorf("hydra %s: exit 0 but stderr:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r.stdout
}

// fails runs the CLI and checks that it exits non-zero with exactly one
// line "hydra: ..." on stderr containing every want. It returns that line.
func (h *harness) fails(args []string, want ...string) string {
	h.t.Helper()
	r := h.run(args...)
	return checkFailure(h.t, args, r, want...)
}

func checkFailure(t *testing.T, args []string, r result, want ...string) string {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("hydra %s: exit 0, want failure; stdout:\n%s", strings.Join(args, " "), r.stdout)
	}
	line, rest, _ := strings.Cut(r.stderr, "\n")
	if rest != "" || !strings.HasPrefix(line, "hydra: ") {
		t.Fatalf("hydra %s: stderr is not one line \"hydra: ...\":\n%s", strings.Join(args, " "), r.stderr)
	}
	t.Logf("hydra %s: %s", strings.Join(args, " "), line)
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("hydra %s: error %q does not contain %q", strings.Join(args, " "), line, w)
		}
	}
	return line
}

// decodeJSON decodes CLI output into v, failing on unknown fields so a
// drift between the CLI's output and the API types shows up.
func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T from output: %v\n%s", v, err, out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// createChannel creates a channel through the Go client.
func (h *harness) createChannel(name string) {
	h.t.Helper()
	if _, err := h.admin.CreateChannel(h.t.Context(), name, release.Config{}); err != nil {
		h.t.Fatalf("create channel %s: %v", name, err)
	}
}

// publishStub publishes a one-file release through the Go client, for
// tests about heads rather than listing.
func (h *harness) publishStub(channel, version string, noPromote bool) api.PublishResponse {
	h.t.Helper()
	resp, err := h.admin.Publish(h.t.Context(), channel, api.PublishRequest{
		Version:   version,
		NoPromote: noPromote,
		Datasets: []release.Dataset{{
			Name:     "data",
			Source:   "s3://bucket/data/" + version + "/",
			Manifest: release.Manifest{Files: []release.File{{Path: "a.bin", Size: 1 << 20, ETag: `"abc"`}}},
		}},
	})
	if err != nil {
		h.t.Fatalf("publish %s/%s: %v", channel, version, err)
	}
	return resp
}

// channel reads a channel through the Go client.
func (h *harness) channel(name string) release.Channel {
	h.t.Helper()
	d, err := h.admin.GetChannel(h.t.Context(), name)
	if err != nil {
		h.t.Fatalf("get channel %s: %v", name, err)
	}
	return d.Channel
}
