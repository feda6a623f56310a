package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/release"
)

// hostile is text a node or a publisher could send to take over an
// operator's terminal: set the window title, clear the screen, an 8-bit
// CSI, a right-to-left override, a forged line and a tab that breaks a
// table's columns.
const hostile = "\x1b]0;owned\x07\x1b[2J\u009b31m\u202eevil\r\nforged line\tcell\x7f"

// hostileEscaped is how the CLI shows it.
const hostileEscaped = `\x1b]0;owned\x07\x1b[2J\u009b31m\u202eevil\x0d\x0aforged line\x09cell\x7f`

// ownSequences are the sequences status --watch draws a terminal frame
// with; they are the CLI's own, not text it was sent.
var ownSequences = strings.NewReplacer(clearScreen, "", cursorHome, "", eraseLine, "", eraseDown, "", hideCursor, "", showCursor, "")

// checkTerminalSafe fails unless out is free of every character a
// terminal acts on (line feeds apart) once the CLI's own sequences are
// taken out.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range ownSequences.Replace(out) {
		if r != '\n' && release.IsControl(r) {
			t.Errorf("%s: control character U+%04X at byte %d reaches the terminal:\n%q", what, r, i, out)
			return
		}
	}
	if strings.Contains(out, "\nforged line") {
		t.Errorf("%s: a line forged by the sender starts a line of output:\n%s", what, out)
	}
}

// newCoreHarness is newHarness with the manager's core at hand, to plant
// state the API refuses (a store written before the API checked it).
func newCoreHarness(t *testing.T) (*harness, *managertest.Manager) {
	t.Helper()
	tokens, err := auth.LoadFile(writeFile(t, "tokens.csv", adminToken+",admin\n"+nodeToken+",node\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := managertest.Start(t, managertest.Options{HTTP: httpapi.Options{Tokens: tokens}})
	h := &harness{t: t, url: m.URL, env: map[string]string{"HYDRA_MANAGER": m.URL, "HYDRA_TOKEN": adminToken}}
	h.admin = newClient(t, m.URL, adminToken)
	h.node = newClient(t, m.URL, nodeToken)
	return h, m
}

// TestTerminalSafeOutput runs the CLI against a real manager holding a
// hostile pause reason and a node's hostile error text, and checks that
// no table, status line or watch frame passes a control character on.
func TestTerminalSafeOutput(t *testing.T) {
	h, m := newCoreHarness(t)
	h.createChannel("web")
	h.publishStub("web", "v1", false)
	if _, err := m.Pause(t.Context(), "web", hostile); err != nil {
		t.Fatal(err)
	}
	h.reportAt(t0.Add(-time.Second), "node-a", []release.Progress{
		{Channel: "web", Version: "v1", State: release.StateFailed, Error: hostile, UpdatedAt: t0},
	})

	for _, args := range [][]string{{"status", "web"}, {"channel", "show", "web"}, {"pin", "web", "v1"}} {
		out := h.ok(args...)
		checkTerminalSafe(t, "hydra "+strings.Join(args, " "), out)
		wantText(t, out, hostileEscaped)
	}

	// JSON escapes what encoding/json leaves raw, and decodes to the same.
	out := h.ok("-o", "json", "status", "web")
	checkTerminalSafe(t, "hydra -o json status web", out)
	var st api.ChannelStatus
	decodeJSON(t, out, &st)
	if len(st.Nodes) != 1 || st.Nodes[0].Releases[0].Error != hostile {
		t.Errorf("-o json status: %+v, want the node's error text unchanged", st.Nodes)
	}
	out = h.ok("-o", "yaml", "status", "web")
	checkTerminalSafe(t, "hydra -o yaml status web", out)
	st = api.ChannelStatus{}
	if err := yaml.UnmarshalStrict([]byte(out), &st); err != nil || len(st.Nodes) != 1 || st.Nodes[0].Releases[0].Error != hostile {
		t.Errorf("-o yaml status: %+v (%v), want the node's error text unchanged", st.Nodes, err)
	}

	for _, tty := range []bool{false, true} {
		w := h.startWatch(tty, "status", "--watch", "web")
		// Read frames until the table; a terminal's first write clears it.
		for frame := w.next(t); !strings.Contains(frame, "NODES"); frame = w.next(t) {
			t.Logf("waiting for the NODES table; frame: %q", frame)
		}
		r := w.stop()
		checkTerminalSafe(t, "hydra status --watch", r.stdout)
		wantText(t, r.stdout, hostileEscaped)
		if r.code != 0 {
			t.Errorf("status --watch: exit %d, stderr %q", r.code, r.stderr)
		}
	}
}

// TestTerminalSafeErrors checks the one error line the CLI prints: a
// node's error text ending publish --wait, and an error body from a server
// that is not the manager.
func TestTerminalSafeErrors(t *testing.T) {
	h := newHarness(t)
	h.createChannel("web")
	fd := newFileData(t)
	h.report("node-a", []release.Progress{
		{Channel: "web", Version: "v2", State: release.StateFailed, Error: hostile, UpdatedAt: time.Now()},
	})
	r := h.run("publish", "web", "--dataset", "data="+fd.dataURI, "--version", "v2", "--wait")
	checkFailure(t, []string{"publish --wait"}, r, "release v2 failed on node node-a", `\x1b]0;owned\x07\x1b[2J\u009b31m\u202eevil`)
	checkTerminalSafe(t, "hydra publish --wait (stderr)", r.stderr)
	checkTerminalSafe(t, "hydra publish --wait (stdout)", r.stdout)

	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(hostile))
	}))
	t.Cleanup(proxy.Close)
	sub := h.sub(t)
	sub.env["HYDRA_MANAGER"] = proxy.URL
	r = sub.runCtx(context.Background(), nil, "channel", "ls")
	checkFailure(t, []string{"channel ls"}, r, "owned")
	checkTerminalSafe(t, "hydra channel ls (stderr)", r.stderr)
}
