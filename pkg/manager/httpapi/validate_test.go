package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager/httpapi"
)

// withSize is a publish body whose file number `at` of four has the JSON
// size value raw.
func withSize(at int, raw string) string {
	var files []string
	for i := range 4 {
		size := "1"
		if i == at {
			size = raw
		}
		files = append(files, fmt.Sprintf(`{"path":"f%d","size":%s}`, i, size))
	}
	return `{"version":"v2","datasets":[{"name":"index","source":"s3://bucket/index/","manifest":{"files":[` + strings.Join(files, ",") + `]}}]}`
}

// TestRefusalsNameTheirField: text that would reach a terminal with
// control characters is refused, and every refusal of a body names the
// field with its array indices.
func TestRefusalsNameTheirField(t *testing.T) {
	srv := newServer(t, httpapi.Options{Tokens: tokens(t)})
	setup(t, srv)
	view := func(field, value string) string {
		quoted, _ := json.Marshal(value)
		return fmt.Sprintf(`{"node":"node-a","views":[{"volumeID":"vol-1","channel":"team-a"},{"volumeID":"vol-2","channel":"team-a",%q:%s}]}`, field, quoted)
	}
	cases := []struct {
		name  string
		call  call
		msg   string
		field string
	}{
		{"escape in pause reason", call{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"\u001b[2Jowned"}`}, "control or bidirectional", "reason"},
		{"right-to-left override in pause reason", call{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"ok \u202e"}`}, "U+202E", "reason"},
		{"8-bit CSI in pause reason", call{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"\u009b2J"}`}, "control or bidirectional", "reason"},
		{"long pause reason", call{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"` + strings.Repeat("r", 1025) + `"}`}, "at most 1024", "reason"},
		{"escape in pod name", call{"PUT", "/v1/nodes/node-a/status", tokNode, view("podName", "web\x1b]0;x\x07")}, "control or bidirectional", "views[1].podName"},
		{"newline in pod namespace", call{"PUT", "/v1/nodes/node-a/status", tokNode, view("podNamespace", "shop\nforged")}, "control or bidirectional", "views[1].podNamespace"},
		{"bidi in pod UID", call{"PUT", "/v1/nodes/node-a/status", tokNode, view("podUID", "\u2066uid")}, "control or bidirectional", "views[1].podUID"},
		{"unknown medium", call{"PUT", "/v1/nodes/node-a/status", tokNode, view("medium", "tape")}, `"disk"`, "views[1].medium"},
		{"duration not a duration", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"maxAge":"abc"}}`}, `must be a duration such as "30s", got "abc"`, "config.maxAge"},
		{"duration as a number", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"maxAge":5}}`}, `got 5`, "config.maxAge"},
		{"nested duration", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"rollout":{"drain":true}}}`}, "must be a duration", "config.rollout.drain"},
		{"size as a string", call{"POST", "/v1/channels/team-a/releases", tokAdmin, withSize(3, `"abc"`)}, "expected int64", "datasets[0].manifest.files[3].size"},
		{"size beyond int64", call{"POST", "/v1/channels/team-a/releases", tokAdmin, withSize(2, "1e30")}, "expected int64", "datasets[0].manifest.files[2].size"},
		{"size over 5 TiB", call{"POST", "/v1/channels/team-a/releases", tokAdmin, withSize(1, "5497558138881")}, "5 TiB", "datasets[0].manifest.files[1].size"},
		{"size as an object", call{"POST", "/v1/channels/team-a/releases", tokAdmin, withSize(0, `{"n":1}`)}, "expected int64", "datasets[0].manifest.files[0].size"},
		{"unknown nested field", call{"POST", "/v1/channels/team-a/releases", tokAdmin, withSize(2, `1,"sha":"x"`)}, `unknown field "datasets[0].manifest.files[2].sha"`, "datasets[0].manifest.files[2].sha"},
		{"right-to-left override in path", call{"POST", "/v1/channels/team-a/releases", tokAdmin, publishBody("v2", "a", "invoice\u202efdp.exe")}, "bidirectional", "datasets[0].manifest.files[1].path"},
		{"peer address without a port", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","peer":{"address":"10.0.0.7"}}`}, "host:port", "peer.address"},
		{"peer port out of range", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","peer":{"address":"10.0.0.7:70000"}}`}, "1 to 65535", "peer.address"},
		{"escape in peer zone", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","peer":{"address":"10.0.0.7:7470","zone":"a\u001b[2J"}}`}, "control or bidirectional", "peer.zone"},
		{"negative bytes from peers", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","releases":[{"channel":"team-a","version":"v1","state":"ready","bytesFromPeers":-1}]}`}, "must not be negative", "releases[0].bytesFromPeers"},
		{"negative bytes served", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","peerServedBytes":-5}`}, "must not be negative", "peerServedBytes"},
		{"bad warm selector key", call{"POST", "/v1/channels", tokAdmin, `{"name":"x","config":{"warm":{"nodeSelector":{"pool/":"search"}}}}`}, "label key", "config.warm.nodeSelector"},
		{"bad warm selector value", call{"PATCH", "/v1/channels/team-a/config", tokAdmin, `{"warm":{"nodeSelector":{"pool":"a b"}}}`}, "must be empty or at most 63", "warm.nodeSelector[pool]"},
		{"bad warm medium", call{"PATCH", "/v1/channels/team-a/config", tokAdmin, `{"warm":{"medium":"tape"}}`}, `"disk" or "memory"`, "warm.medium"},
		{"negative node quota", call{"PATCH", "/v1/channels/team-a/config", tokAdmin, `{"nodeQuota":-1}`}, "must be 0 (none)", "nodeQuota"},
		{"bad reported label", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","labels":{"pool":"-x"}}`}, "must be empty or at most 63", "labels[pool]"},
		{"bytesDone as a string", call{"PUT", "/v1/nodes/node-a/status", tokNode, `{"node":"node-a","releases":[{"channel":"team-a","version":"v1","state":"ready"},{"channel":"team-a","version":"v1","state":"ready","bytesDone":"x"}]}`}, "expected int64", "releases[1].bytesDone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, e, raw := tc.call.do(t, srv)
			if status != 400 {
				t.Fatalf("status %d, want 400; body %s", status, raw)
			}
			if e.Error.Code != api.CodeInvalid || !strings.Contains(e.Error.Message, tc.msg) || e.Error.Field != tc.field {
				t.Fatalf("error %+v; want message containing %q, field %q", e.Error, tc.msg, tc.field)
			}
		})
	}
	// A plain reason is still taken.
	if status, e, _ := (call{"POST", "/v1/channels/team-a/pause", tokAdmin, `{"reason":"löschen — maintenance"}`}).do(t, srv); status != 200 {
		t.Fatalf("pause with a plain reason: %d %+v", status, e)
	}
}
