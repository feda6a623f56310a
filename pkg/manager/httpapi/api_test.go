package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/auth"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// Tokens of the test manager, one per role and scope.
const (
	tokAdmin     = "admin-token-0123456789"
	tokPublisher = "publisher-token-team-abc"
	tokNode      = "node-token-node-a-0123"
	tokReader    = "reader-token-012345678"
)

const tokenFile = tokAdmin + ",admin\n" +
	tokPublisher + ",publisher,team-*\n" +
	tokNode + ",node,node-a\n" +
	"# a comment\n\n" +
	tokReader + ",reader\n"

// newServer runs a real manager on bbolt behind the HTTP layer.
func newServer(t *testing.T, opts httpapi.Options) string {
	t.Helper()
	return managertest.Start(t, managertest.Options{HTTP: opts}).URL
}

func tokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tk, err := auth.Parse(strings.NewReader(tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

type call struct {
	method, path, token, body string
}

func (c call) do(t *testing.T, base string) (int, api.ErrorResponse, []byte) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e api.ErrorResponse
	_ = json.Unmarshal(raw, &e)
	return resp.StatusCode, e, raw
}

func publishBody(version string, paths ...string) string {
	var files []string
	for _, p := range paths {
		quoted, _ := json.Marshal(p)
		files = append(files, fmt.Sprintf(`{"path":%s,"size":1,"etag":"\"e\""}`, quoted))
	}
	return fmt.Sprintf(`{"version":%q,"datasets":[{"name":"index","source":"s3://bucket/index/","manifest":{"files":[%s]}}]}`,
		version, strings.Join(files, ","))
}

// setup creates channel team-a with release v1 as admin.
func setup(t *testing.T, srv string) {
	t.Helper()
	for _, c := range []call{
		{"POST", "/v1/channels", tokAdmin, `{"name":"team-a"}`},
		{"POST", "/v1/channels", tokAdmin, `{"name":"other"}`},
		{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v1", "a.bin")},
	} {
		if status, e, _ := c.do(t, srv); status/100 != 2 {
			t.Fatalf("setup %s %s: %d %+v", c.method, c.path, status, e)
		}
	}
}

// TestBadInputs is the table of refused requests: each gets its status,
// its code, a message that says what was wrong and, where one is to blame,
// the offending field.
func TestBadInputs(t *testing.T) {
	srv := newServer(t, httpapi.Options{Tokens: tokens(t), MaxBody: 4 << 10, MaxPublishBody: 64 << 10})
	setup(t, srv)
	huge := publishBody("v9", strings.Repeat("x", 70<<10))
	cases := []struct {
		name   string
		call   call
		status int
		code   string
		msg    string
		field  string
	}{
		// Authentication and roles.
		{"no token", call{"GET", "/v1/channels", "", ""}, 401, api.CodeUnauthorized, "missing bearer token", ""},
		{"wrong token", call{"GET", "/v1/channels", "not-a-real-token-at-all", ""}, 401, api.CodeUnauthorized, "unknown bearer token", ""},
		{"basic auth scheme", call{"GET", "/v1/channels", "", ""}, 401, api.CodeUnauthorized, "missing bearer token", ""},
		{"reader publishes", call{"POST", "/v1/channels/team-a/releases", tokReader, publishBody("v2", "a")}, 403, api.CodeForbidden, "may not change channel team-a", ""},
		{"publisher out of scope", call{"POST", "/v1/channels/other/releases", tokPublisher, publishBody("v2", "a")}, 403, api.CodeForbidden, `scope "team-*"`, ""},
		{"publisher creates out of scope", call{"POST", "/v1/channels", tokPublisher, `{"name":"other-2"}`}, 403, api.CodeForbidden, "other-2", ""},
		{"publisher deletes", call{"DELETE", "/v1/channels/team-a", tokPublisher, ""}, 403, api.CodeForbidden, "administer", ""},
		{"node polls another node", call{"GET", "/v1/nodes/node-b/desired?wait=0s", tokNode, ""}, 403, api.CodeForbidden, "act as node node-b", ""},
		{"reader reports status", call{"PUT", "/v1/nodes/node-a/status", tokReader, `{"node":"node-a"}`}, 403, api.CodeForbidden, "", ""},
		{"node publishes", call{"POST", "/v1/channels/team-a/releases", tokNode, publishBody("v2", "a")}, 403, api.CodeForbidden, "", ""},
		// Names and versions.
		{"bad channel name", call{"POST", "/v1/channels", tokAdmin, `{"name":"Bad_Name"}`}, 400, api.CodeInvalid, "DNS-1123", "name"},
		{"channel name too long", call{"POST", "/v1/channels", tokAdmin, `{"name":"` + strings.Repeat("a", 64) + `"}`}, 400, api.CodeInvalid, "at most 63", "name"},
		{"bad channel in path", call{"GET", "/v1/channels/Bad_Name", tokReader, ""}, 400, api.CodeInvalid, "DNS-1123", "channel"},
		{"bad version", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("../v2", "a")}, 400, api.CodeInvalid, "must match", "version"},
		{"bad config", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"keep":-1}}`}, 400, api.CodeInvalid, "between 1 and", "config.keep"},
		{"bad duration", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"maxAge":"soon"}}`}, 400, api.CodeInvalid, "must be a duration", "config.maxAge"},
		// Manifests.
		{"traversal path", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "../../etc/passwd")}, 400, api.CodeInvalid, `".." segments`, "datasets[0].manifest.files[0].path"},
		{"absolute path", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "/etc/passwd")}, 400, api.CodeInvalid, "must be relative", "datasets[0].manifest.files[0].path"},
		{"NUL in path", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "a\x00b")}, 400, api.CodeInvalid, "control characters", "datasets[0].manifest.files[0].path"},
		{"duplicate path", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "a", "a")}, 400, api.CodeInvalid, "duplicate of files[0]", "datasets[0].manifest.files[1].path"},
		{"file is a directory", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "a", "a/b")}, 400, api.CodeInvalid, "also a directory", "datasets[0].manifest.files[0].path"},
		{"no datasets", call{"POST", "/v1/channels/team-a/releases", tokAdmin, `{"version":"v2","datasets":[]}`}, 400, api.CodeInvalid, "at least one dataset", "datasets"},
		{"bad source", call{"POST", "/v1/channels/team-a/releases", tokAdmin, strings.Replace(publishBody("v2", "a"), "s3://bucket/index/", "ftp://x/", 1)}, 400, api.CodeInvalid, "scheme must be s3 or file", "datasets[0].source"},
		// Body shape.
		{"unknown JSON field", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","colour":"red"}`}, 400, api.CodeInvalid, `unknown field "colour"`, "colour"},
		{"malformed JSON", call{"POST", "/v1/channels", tokAdmin, `{"name":`}, 400, api.CodeInvalid, "JSON", ""},
		{"wrong JSON type", call{"POST", "/v1/channels", tokAdmin, `{"name":5}`}, 400, api.CodeInvalid, "expected string", "name"},
		{"trailing data", call{"POST", "/v1/channels", tokAdmin, `{"name":"x"} {}`}, 400, api.CodeInvalid, "after the JSON value", ""},
		{"empty body", call{"POST", "/v1/channels", tokAdmin, ""}, 400, api.CodeInvalid, "empty body", ""},
		{"oversized body", call{"POST", "/v1/channels", tokAdmin, `{"name":"` + strings.Repeat("a", 5<<10) + `"}`}, 413, api.CodeTooLarge, "exceeds 4096 bytes", ""},
		{"oversized publish", call{"POST", "/v1/channels/team-a/releases", tokAdmin, huge}, 413, api.CodeTooLarge, "exceeds 65536 bytes", ""},
		{"bad index", call{"GET", "/v1/nodes/node-a/desired?index=-1", tokNode, ""}, 400, api.CodeInvalid, "non-negative integer", "index"},
		{"bad wait", call{"GET", "/v1/nodes/node-a/desired?wait=forever", tokNode, ""}, 400, api.CodeInvalid, "duration", "wait"},
		{"status for another node in body", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-b"}`}, 400, api.CodeInvalid, "does not match", "node"},
		{"bad report state", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","releases":[{"channel":"team-a","version":"v1","state":"bogus"}]}`}, 400, api.CodeInvalid, "must be pending", "releases[0].state"},
		// State conflicts and missing things.
		{"duplicate channel", call{"POST", "/v1/channels", tokAdmin, `{"name":"team-a"}`}, 409, api.CodeExists, "already exists", ""},
		{"duplicate version", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v1", "a")}, 409, api.CodeExists, "already exists", ""},
		{"unknown channel", call{"GET", "/v1/channels/nope", tokReader, ""}, 404, api.CodeNotFound, "channel nope: not found", ""},
		{"status of unknown channel", call{"GET", "/v1/channels/nope/status", tokReader, ""}, 404, api.CodeNotFound, "channel nope: not found", ""},
		{"publish to unknown channel", call{"POST", "/v1/channels/nope/releases", tokAdmin, publishBody("v1", "a")}, 404, api.CodeNotFound, "not found", ""},
		{"unknown release", call{"GET", "/v1/channels/team-a/releases/v7", tokReader, ""}, 404, api.CodeNotFound, "team-a/v7: not found", ""},
		{"head to unknown release", call{"PUT", "/v1/channels/team-a/head", tokAdmin, `{"version":"v7"}`}, 404, api.CodeNotFound, "not found", ""},
		{"head without version", call{"PUT", "/v1/channels/team-a/head", tokAdmin, `{}`}, 400, api.CodeInvalid, "must not be empty", "version"},
		{"rollback past the oldest", call{"POST", "/v1/channels/team-a/rollback", tokAdmin, `{}`}, 409, api.CodeConflict, "nothing was before it", ""},
		{"changed dataset set", call{"POST", "/v1/channels/team-a/releases", tokAdmin, strings.Replace(publishBody("v8", "a"), `"name":"index"`, `"name":"other"`, 1)},
			400, api.CodeInvalid, "added: other; removed: index", "datasets"},
		{"unknown setting", call{"PATCH", "/v1/channels/team-a/config", tokAdmin, `{"kepe":1}`}, 400, api.CodeInvalid, "not a channel setting", "kepe"},
		{"bad setting", call{"PATCH", "/v1/channels/team-a/config", tokAdmin, `{"rollout":{"maxUnavailable":-2}}`}, 400, api.CodeInvalid, "at least 1", "rollout.maxUnavailable"},
		{"remove the head", call{"DELETE", "/v1/channels/team-a/releases/v1", tokAdmin, ""}, 409, api.CodeConflict, "head or pinned", ""},
		{"unknown route", call{"GET", "/v1/nothing", tokReader, ""}, 404, "", "", ""},
		{"wrong method", call{"PATCH", "/v1/channels", tokAdmin, `{}`}, 405, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.call
			if tc.name == "basic auth scheme" {
				c.token = ""
			}
			status, e, raw := c.do(t, srv)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %s", status, tc.status, raw)
			}
			if tc.code == "" {
				return
			}
			if e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.msg) || e.Error.Field != tc.field {
				t.Fatalf("error %+v; want code %s, message containing %q, field %q", e.Error, tc.code, tc.msg, tc.field)
			}
		})
	}
	// Nothing refused above left state behind.
	status, _, raw := call{"GET", "/v1/channels/team-a/releases", tokReader, ""}.do(t, srv)
	var list api.ReleaseList
	if err := json.Unmarshal(raw, &list); status != 200 || err != nil || len(list.Releases) != 1 {
		t.Fatalf("after refused requests: %d %s", status, raw)
	}
}

// TestBasicSchemeRefused: a non-Bearer Authorization header is a 401.
func TestBasicSchemeRefused(t *testing.T) {
	srv := newServer(t, httpapi.Options{Tokens: tokens(t)})
	req, _ := http.NewRequest("GET", srv+"/v1/channels", nil)
	req.SetBasicAuth("admin", tokAdmin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("basic auth: %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestRolesAllowed checks the positive side of the role table.
func TestRolesAllowed(t *testing.T) {
	srv := newServer(t, httpapi.Options{Tokens: tokens(t)})
	setup(t, srv)
	for _, c := range []call{
		{"GET", "/v1/channels", tokReader, ""},
		{"GET", "/v1/channels/team-a/releases/v1/manifest", tokNode, ""},
		{"POST", "/v1/channels", tokPublisher, `{"name":"team-b"}`},
		{"POST", "/v1/channels/team-a/releases", tokPublisher, publishBody("v2", "a")},
		{"PUT", "/v1/channels/team-a/pin", tokPublisher, `{"version":"v1"}`},
		{"DELETE", "/v1/channels/team-a/pin", tokPublisher, ""},
		{"GET", "/v1/nodes/node-a/desired?wait=0s", tokNode, ""},
		{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a"}`},
		{"DELETE", "/v1/channels/team-b", tokAdmin, ""},
		{"GET", "/healthz", "", ""},
		{"GET", "/readyz", "", ""},
	} {
		if status, e, _ := c.do(t, srv); status/100 != 2 {
			t.Errorf("%s %s as %s: %d %+v", c.method, c.path, c.token, status, e.Error)
		}
	}
}

// TestMetrics: /metrics serves the manager's and the HTTP layer's series.
func TestMetrics(t *testing.T) {
	srv := newServer(t, httpapi.Options{})
	setup(t, srv)
	_, _, raw := call{"GET", "/metrics", "", ""}.do(t, srv)
	for _, want := range []string{
		`hydra_manager_publishes_total{result="ok"} 1`,
		`hydra_manager_http_requests_total{code="201",route="POST /v1/channels"} 2`,
		"hydra_manager_leader",
	} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
