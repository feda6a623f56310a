package httpapi_test

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// logBuffer receives klog's output while the servers write it.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// take returns what was written since the last take.
func (b *logBuffer) take() string {
	klog.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

// captureLogs sends klog's output to a buffer, at verbosity 0, until the
// test ends.
func captureLogs(t *testing.T) *logBuffer {
	t.Helper()
	b := &logBuffer{}
	klog.LogToStderr(false)
	klog.SetOutput(b)
	setVerbosity(t, "0")
	t.Cleanup(func() {
		klog.Flush()
		klog.SetOutput(io.Discard)
		klog.LogToStderr(true)
	})
	return b
}

func setVerbosity(t *testing.T, v string) {
	t.Helper()
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	if err := fs.Set("v", v); err != nil {
		t.Fatal(err)
	}
}

// auditLines are the lines of the "audit" logger in logs.
func auditLines(logs string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `logger="audit"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestAuditLog: every request to a mutating route — refused for its
// token, without one, or done — leaves exactly one audit line naming the
// principal, the method and route, the action, the channel (and release
// or node) and the status; no line anywhere holds a token. A node's
// accepted report is logged at -v=4 only.
func TestAuditLog(t *testing.T) {
	logs := captureLogs(t)
	tokens := scopeTokens(t)
	id := func(token string) string {
		p, ok := tokens.Lookup(token)
		if !ok {
			t.Fatalf("no principal for a test token")
		}
		return p.ID
	}
	for _, ri := range httpapi.RouteTable() {
		if !ri.Mutating {
			continue
		}
		m, ok := mutations[ri.Pattern]
		if !ok {
			t.Errorf("mutating route %s has no case in mutations", ri.Pattern)
			continue
		}
		t.Run(ri.Pattern, func(t *testing.T) {
			mgr := startFixture(t)
			for _, c := range m.prepare {
				if status, e, _ := c.do(t, mgr.URL); status/100 != 2 {
					t.Fatalf("prepare %s %s: %d %+v", c.method, c.path, status, e)
				}
			}
			logs.take()
			method, _, _ := strings.Cut(ri.Pattern, " ")
			_, allowed := m.allowed()
			channel := `channel="team-a"`
			if strings.HasPrefix(m.path, "/v1/nodes/") {
				channel = `node="node-a"`
			} else if ri.Pattern == "POST /v1/channels" {
				channel = `channel="team-new"`
			}
			for _, tc := range []struct {
				who, token string
				status     int
				principal  string
			}{
				{"no token", "", 401, `principal="unauthenticated"`},
				{"publisher of other channels", tokPubOther, 403, fmt.Sprintf("principal=%q role=\"publisher\"", id(tokPubOther))},
				{"allowed", allowed, 0, fmt.Sprintf("principal=%q", id(allowed))},
			} {
				status, _, _ := call{method, m.path, tc.token, m.body}.do(t, mgr.URL)
				lines := auditLines(logs.take())
				if tc.status == 0 && m.node {
					if len(lines) != 0 {
						t.Errorf("%s: an accepted node report is logged at V(0): %q", tc.who, lines)
					}
					continue
				}
				if len(lines) != 1 {
					t.Errorf("%s: %d audit lines, want 1: %q", tc.who, len(lines), lines)
					continue
				}
				wants := []string{`"mutation"`, tc.principal, fmt.Sprintf("method=%q", method),
					fmt.Sprintf("route=%q", ri.Pattern), fmt.Sprintf("status=%d", status), "action="}
				// A new channel's name is in the body, which is not read
				// without a valid token.
				if tc.token != "" || ri.Pattern != "POST /v1/channels" {
					wants = append(wants, channel)
				}
				for _, want := range wants {
					if !strings.Contains(lines[0], want) {
						t.Errorf("%s: audit line %q lacks %s", tc.who, lines[0], want)
					}
				}
			}
			if m.node { // at -v=4 the accepted report is logged too
				setVerbosity(t, "4")
				defer setVerbosity(t, "0")
				_, _, _ = call{method, m.path, allowed, m.body}.do(t, mgr.URL)
				if lines := auditLines(logs.take()); len(lines) != 1 || !strings.Contains(lines[0], "status=204") {
					t.Errorf("accepted node report at -v=4: %q, want one line", lines)
				}
			}
		})
	}
	// Releases are named where the request names one.
	mgr := startFixture(t)
	logs.take()
	_, _, _ = call{"POST", "/v1/channels/team-a/rollback", tokPublisher, `{}`}.do(t, mgr.URL) // to v1
	_, _, _ = call{"PUT", "/v1/channels/team-a/head", tokPublisher, `{"version":"v2"}`}.do(t, mgr.URL)
	_, _, _ = call{"POST", "/v1/channels/team-a/releases", tokPublisher, publishBody("v9", "a")}.do(t, mgr.URL)
	lines := auditLines(logs.take())
	for i, want := range []string{`release="v1"`, `release="v2"`, `release="v9"`} {
		if i >= len(lines) || !strings.Contains(lines[i], want) {
			t.Errorf("audit line %d lacks %s: %q", i, want, lines)
		}
	}
}

// TestAuditNeverLogsTokens runs requests of every kind, refused and not,
// at the highest verbosity, and finds no token in the whole log.
func TestAuditNeverLogsTokens(t *testing.T) {
	logs := captureLogs(t)
	setVerbosity(t, "10")
	mgr := startFixture(t)
	for pattern, m := range mutations {
		method, _, _ := strings.Cut(pattern, " ")
		for _, tok := range []string{tokAdmin, tokPublisher, tokPubOther, tokReader, tokNode, tokNodeB, "not-a-token-but-secret-0123"} {
			_, _, _ = call{method, m.path, tok, m.body}.do(t, mgr.URL)
		}
	}
	_, _, _ = call{"GET", "/v1/channels", tokReader, ""}.do(t, mgr.URL)
	all := logs.take()
	if len(auditLines(all)) == 0 {
		t.Fatal("no audit lines captured: the test would prove nothing")
	}
	for _, tok := range []string{tokAdmin, tokPublisher, tokPubOther, tokReader, tokNode, tokNodeB, "not-a-token-but-secret-0123"} {
		if strings.Contains(all, tok) {
			t.Errorf("the log holds token %.6s…", tok)
		}
	}
}

// TestAuditInsecureNoAuth: without a token file every caller is admin, and
// the audit log says so.
func TestAuditInsecureNoAuth(t *testing.T) {
	logs := captureLogs(t)
	mgr := managertest.Start(t, managertest.Options{})
	logs.take()
	_, _, _ = call{"POST", "/v1/channels", "", `{"name":"open"}`}.do(t, mgr.URL)
	lines := auditLines(logs.take())
	if len(lines) != 1 || !strings.Contains(lines[0], `principal="anonymous(insecure-no-auth)" role="admin"`) || !strings.Contains(lines[0], "status=201") {
		t.Fatalf("audit lines %q, want one naming anonymous(insecure-no-auth)", lines)
	}
}
