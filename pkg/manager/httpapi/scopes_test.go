package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
	"github.com/hydra-csi/hydra/pkg/store"
)

// More tokens for the scope tests: a publisher of other channels than
// team-* and a node token for another node than node-a.
const (
	tokPubOther = "publisher-token-other-only"
	tokNodeB    = "node-token-node-b-0123"
)

// mutation says how to call one mutating route so that it would succeed
// on the fixture (channel team-a with releases v1 and v2, head v2).
type mutation struct {
	path, body string
	// prepare runs as admin first (pin before unpin, pause before resume).
	prepare []call
	// publisher: a publisher token scoped to team-a may do it; node: the
	// route acts as node-a, which node-a's token may.
	publisher, node bool
}

// mutations holds a case for every mutating route of the route table;
// TestMutatingRoutesEnforceScopes fails for a route that has none, so a
// new route cannot go untested.
var mutations = map[string]mutation{
	"POST /v1/channels":                                {path: "/v1/channels", body: `{"name":"team-new"}`, publisher: true},
	"DELETE /v1/channels/{channel}":                    {path: "/v1/channels/team-a"},
	"POST /v1/channels/{channel}/releases":             {path: "/v1/channels/team-a/releases", body: publishBody("v3", "a.bin"), publisher: true},
	"DELETE /v1/channels/{channel}/releases/{version}": {path: "/v1/channels/team-a/releases/v1", publisher: true},
	"PATCH /v1/channels/{channel}/config":              {path: "/v1/channels/team-a/config", body: `{"keep":5}`, publisher: true},
	"PUT /v1/channels/{channel}/head":                  {path: "/v1/channels/team-a/head", body: `{"version":"v1"}`, publisher: true},
	"POST /v1/channels/{channel}/rollback":             {path: "/v1/channels/team-a/rollback", body: `{}`, publisher: true},
	"PUT /v1/channels/{channel}/pin":                   {path: "/v1/channels/team-a/pin", body: `{"version":"v1"}`, publisher: true},
	"DELETE /v1/channels/{channel}/pin": {path: "/v1/channels/team-a/pin", publisher: true,
		prepare: []call{{"PUT", "/v1/channels/team-a/pin", tokAdmin, `{"version":"v1"}`}}},
	"POST /v1/channels/{channel}/pause": {path: "/v1/channels/team-a/pause", body: `{"reason":"scope test"}`, publisher: true},
	"POST /v1/channels/{channel}/resume": {path: "/v1/channels/team-a/resume", publisher: true,
		prepare: []call{{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"before resume"}`}}},
	"PUT /v1/nodes/{node}/status": {path: "/v1/nodes/node-a/status", body: `{"node":"node-a"}`, node: true},
	// Forgetting a node is the admin's alone, the node's own token included.
	"DELETE /v1/nodes/{node}": {path: "/v1/nodes/node-a",
		prepare: []call{{"PUT", "/v1/nodes/node-a/status", tokAdmin, `{"node":"node-a"}`}}},
}

func scopeTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tk, err := auth.Parse(strings.NewReader(tokenFile + tokPubOther + ",publisher,other-*\n" + tokNodeB + ",node,node-b\n"))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// startFixture runs a manager with the scope tokens and team-a at v2.
func startFixture(t *testing.T) *managertest.Manager {
	t.Helper()
	// No background pass (retention, sweep) may write during a test.
	mgr := managertest.Start(t, managertest.Options{RetentionInterval: time.Hour, HTTP: httpapi.Options{Tokens: scopeTokens(t)}})
	setup(t, mgr.URL)
	if status, e, _ := (call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "a.bin")}).do(t, mgr.URL); status != 201 {
		t.Fatalf("publish v2: %d %+v", status, e)
	}
	return mgr
}

// snapshot is every key of the store with its version and value.
func snapshot(t *testing.T, mgr *managertest.Manager) []store.KV {
	t.Helper()
	kvs, err := mgr.Store.Backend().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

func keysOf(kvs []store.KV) []string {
	var out []string
	for _, kv := range kvs {
		out = append(out, fmt.Sprintf("%s@%d", kv.Key, kv.Version))
	}
	return out
}

// denial is a token that must be refused, with the status it gets.
type denial struct {
	who, token string
	status     int
}

// denials lists who must be refused on route m.
func (m mutation) denials() []denial {
	out := []denial{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", tokAdmin[:len(tokAdmin)-1] + "X", http.StatusUnauthorized},
		{"publisher of other channels", tokPubOther, http.StatusForbidden},
		{"reader", tokReader, http.StatusForbidden},
	}
	if m.node {
		return append(out, denial{"node token of another node", tokNodeB, http.StatusForbidden},
			denial{"publisher", tokPublisher, http.StatusForbidden})
	}
	out = append(out, denial{"node", tokNode, http.StatusForbidden}, denial{"node of another node", tokNodeB, http.StatusForbidden})
	if !m.publisher {
		out = append(out, denial{"publisher of the channel", tokPublisher, http.StatusForbidden})
	}
	return out
}

// allowed is the least privileged token that may call route m.
func (m mutation) allowed() (string, string) {
	switch {
	case m.node:
		return "node-a's token", tokNode
	case m.publisher:
		return "publisher of the channel", tokPublisher
	}
	return "admin", tokAdmin
}

// TestMutatingRoutesEnforceScopes takes every mutating route from the
// server's own route table and checks that each token without the right
// — none, unknown, a publisher scoped to other channels, a reader, a node
// token, a publisher where only admin may — is refused with 401/403 and
// leaves the store exactly as it was (every key, version and value), and
// that the least privileged token that has the right succeeds and changes
// the store.
func TestMutatingRoutesEnforceScopes(t *testing.T) {
	routes := httpapi.RouteTable()
	var mutating []string
	for _, ri := range routes {
		if ri.Mutating {
			mutating = append(mutating, ri.Pattern)
		}
	}
	for pattern := range mutations {
		if !slices.Contains(mutating, pattern) {
			t.Errorf("the scope table has %s, which is no mutating route of the server", pattern)
		}
	}
	if len(mutating) < 10 {
		t.Fatalf("the route table lists %d mutating routes, want at least 10: %v", len(mutating), mutating)
	}
	for _, pattern := range mutating {
		m, ok := mutations[pattern]
		if !ok {
			t.Errorf("mutating route %s has no case in the scope table (mutations): add one", pattern)
			continue
		}
		t.Run(pattern, func(t *testing.T) {
			mgr := startFixture(t)
			method, _, _ := strings.Cut(pattern, " ")
			for _, c := range m.prepare {
				if status, e, _ := c.do(t, mgr.URL); status/100 != 2 {
					t.Fatalf("prepare %s %s: %d %+v", c.method, c.path, status, e)
				}
			}
			for _, d := range m.denials() {
				before := snapshot(t, mgr)
				status, e, raw := call{method, m.path, d.token, m.body}.do(t, mgr.URL)
				if status != d.status {
					t.Errorf("%s: %d, want %d; body %s", d.who, status, d.status, raw)
				}
				if d.status == http.StatusForbidden && e.Error.Code != api.CodeForbidden {
					t.Errorf("%s: code %q, want %s", d.who, e.Error.Code, api.CodeForbidden)
				}
				if after := snapshot(t, mgr); !reflect.DeepEqual(before, after) {
					t.Errorf("%s: a refused request changed the store:\nbefore %v\nafter  %v", d.who, keysOf(before), keysOf(after))
				}
			}
			who, token := m.allowed()
			before := snapshot(t, mgr)
			status, e, _ := call{method, m.path, token, m.body}.do(t, mgr.URL)
			if status/100 != 2 {
				t.Fatalf("%s: %d %+v, want success", who, status, e.Error)
			}
			if after := snapshot(t, mgr); reflect.DeepEqual(before, after) {
				t.Errorf("%s: succeeded but the store did not change: the case does not exercise the route", who)
			}
		})
	}
}
