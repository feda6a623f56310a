package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/manager/auth"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, file, want string
	}{
		{"empty", "", "no tokens"},
		{"only comments", "# nothing\n\n", "no tokens"},
		{"one field", "abcdefghijklmnopq\n", "line 1: want TOKEN,ROLE[,GLOB], got 1 fields"},
		{"four fields", "abcdefghijklmnopq,admin,x,y\n", "got 4 fields"},
		{"short token", "short,admin\n", "line 1: token shorter than 16"},
		{"unknown role", "abcdefghijklmnopq,root\n", `role "root": must be`},
		{"bad glob", "abcdefghijklmnopq,publisher,[a\n", `glob "[a"`},
		{"glob on admin", "abcdefghijklmnopq,admin,team-*\n", "only applies to publisher and node"},
		{"duplicate token", "abcdefghijklmnopq,admin\n# x\nabcdefghijklmnopq,reader\n", "line 3: same token as line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := auth.Parse(strings.NewReader(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLookupAndAllowed(t *testing.T) {
	tk, err := auth.Parse(strings.NewReader(
		"admin-0123456789abcdef,admin\n" +
			"pub-0123456789abcdef,publisher,search-*\n" +
			"node-0123456789abcdef,node\n" +
			"read-0123456789abcdef,reader\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup("nope-0123456789abcdef"); ok {
		t.Fatal("unknown token found")
	}
	if _, ok := tk.Lookup(""); ok {
		t.Fatal("empty token found")
	}
	cases := []struct {
		token  string
		act    auth.Action
		target string
		want   bool
	}{
		{"admin-0123456789abcdef", auth.Admin, "", true},
		{"admin-0123456789abcdef", auth.Node, "node-a", true},
		{"pub-0123456789abcdef", auth.ChangeChannel, "search-index", true},
		{"pub-0123456789abcdef", auth.ChangeChannel, "ads", false},
		{"pub-0123456789abcdef", auth.Read, "", true},
		{"pub-0123456789abcdef", auth.Admin, "", false},
		{"pub-0123456789abcdef", auth.Node, "node-a", false},
		{"node-0123456789abcdef", auth.Node, "any-node", true},
		{"node-0123456789abcdef", auth.ChangeChannel, "search-index", false},
		{"read-0123456789abcdef", auth.Read, "", true},
		{"read-0123456789abcdef", auth.ChangeChannel, "search-index", false},
	}
	for _, tc := range cases {
		p, ok := tk.Lookup(tc.token)
		if !ok {
			t.Fatalf("token %s not found", tc.token)
		}
		if got := p.Allowed(tc.act, tc.target); got != tc.want {
			t.Errorf("%s (%s) Allowed(%d, %q) = %t, want %t", tc.token, p.Role, tc.act, tc.target, got, tc.want)
		}
		if strings.Contains(p.ID, tc.token) {
			t.Errorf("principal ID %q reveals the token", p.ID)
		}
	}
}

// TestLookupRefusesNearMisses: a token that differs from a real one only
// in its last byte (or is a prefix of it, or has a byte more) is refused;
// a comparison that stopped early or compared a prefix would let it in.
func TestLookupRefusesNearMisses(t *testing.T) {
	const token = "admin-0123456789abcdef"
	tk, err := auth.Parse(strings.NewReader(token + ",admin\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup(token); !ok {
		t.Fatal("the real token is refused")
	}
	for _, guess := range []string{
		token[:len(token)-1] + "e", // last byte differs
		token[:len(token)-1] + "F",
		token[:len(token)-1],   // one byte short
		token + "0",            // one byte more
		"b" + token[1:],        // first byte differs
		strings.ToUpper(token), // case differs
	} {
		if p, ok := tk.Lookup(guess); ok {
			t.Errorf("Lookup(%q) = %s, want refused", guess, p.ID)
		}
	}
}

// TestPeerSecret: the peer secret is HMAC-SHA256 keyed by the SHA-256 of
// the file's bytes, so replicas reading one file agree, and any change of
// the file (a comment included) gives another.
func TestPeerSecret(t *testing.T) {
	const file = "# tokens\nadmin-0123456789abcdef,admin\nnode-0123456789abcdef,node\n"
	secret := func(t *testing.T, body string) []byte {
		t.Helper()
		tk, err := auth.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return tk.PeerSecret()
	}
	key := sha256.Sum256([]byte(file))
	mac := hmac.New(sha256.New, key[:])
	mac.Write([]byte("hydra-peer-secret-v1"))
	want := mac.Sum(nil)
	for _, tc := range []struct {
		name, body string
		same       bool
	}{
		{"the same file", file, true},
		{"a comment added", file + "# rotated\n", false},
		{"a token rotated", strings.Replace(file, "node-0123", "node-9123", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := secret(t, tc.body)
			if len(got) != sha256.Size {
				t.Fatalf("secret of %d bytes, want %d", len(got), sha256.Size)
			}
			if hmac.Equal(got, want) != tc.same {
				t.Fatalf("secret %x, first file's %x: same=%t, want %t", got, want, !tc.same, tc.same)
			}
		})
	}
}
