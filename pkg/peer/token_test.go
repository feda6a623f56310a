package peer_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// TestToken: the token is the documented HMAC, and it checks only for the
// node and the secret it was made with.
func TestToken(t *testing.T) {
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte("hydra-peer-v1\x00node-a"))
	want := hex.EncodeToString(m.Sum(nil))
	if got := peer.Token(testSecret, "node-a"); got != want {
		t.Fatalf("Token = %s, want %s", got, want)
	}
	other := []byte("another secret of sixteen+ bytes")
	for _, tc := range []struct {
		name         string
		secret       []byte
		node, token  string
		wantAccepted bool
	}{
		{"round trip", testSecret, "node-a", want, true},
		{"another node's token", testSecret, "node-b", want, false},
		{"another secret", other, "node-a", want, false},
		{"upper-case hex", testSecret, "node-a", strings.ToUpper(want), false},
		{"truncated", testSecret, "node-a", want[:63], false},
		{"empty token", testSecret, "node-a", "", false},
		{"empty secret", nil, "node-a", peer.Token(nil, "node-a"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := peer.CheckToken(tc.secret, tc.node, tc.token); got != tc.wantAccepted {
				t.Errorf("CheckToken = %v, want %v", got, tc.wantAccepted)
			}
		})
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		wantErr  string
	}{
		{"16 bytes", strings.Repeat("ab", 16), ""},
		{"upper case", strings.Repeat("AB", 32), ""},
		{"empty", "", "at least 16 bytes"},
		{"15 bytes", strings.Repeat("ab", 15), "at least 16 bytes"},
		{"odd digits", strings.Repeat("a", 33), "hex digits"},
		{"not hex", strings.Repeat("zz", 16), "hex digits"},
		{"too long", strings.Repeat("ab", peer.MaxSecretBytes+1), "at most 512 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := peer.DecodeSecret(tc.in)
			if tc.wantErr == "" {
				if err != nil || len(b) != len(tc.in)/2 {
					t.Fatalf("DecodeSecret = %d bytes, %v; want %d bytes", len(b), err, len(tc.in)/2)
				}
				return
			}
			var fe *release.FieldError
			switch {
			case err == nil:
				t.Fatalf("DecodeSecret = %x, want an error", b)
			case !errors.As(err, &fe) || fe.Field != "peerSecret" || !errors.Is(err, release.ErrInvalid):
				t.Errorf("error %v is not an invalid peerSecret field", err)
			case !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			case len(tc.in) > 8 && strings.Contains(err.Error(), tc.in[:8]):
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}
