package peer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Secret length bounds, in bytes (DecodeSecret).
const (
	// MinSecretBytes is the shortest secret accepted: 128 bits.
	MinSecretBytes = 16
	// MaxSecretBytes bounds what a desired state may carry.
	MaxSecretBytes = 512
)

// tokenDomain separates peer tokens from any other use of the secret, and
// versions them.
const tokenDomain = "hydra-peer-v1\x00" //nolint:gosec // a domain-separation label, not a credential

// Token is what node shows other nodes: the lower-case hex of
// HMAC-SHA256(secret, "hydra-peer-v1\x00"+node). Every node that serves
// peers gets the same secret from the manager, so any of them can check
// the token of any other, and a token names the node it was made for.
func Token(secret []byte, node string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tokenDomain + node)) //nolint:errcheck // hash.Hash.Write never fails
	return hex.EncodeToString(m.Sum(nil))
}

// CheckToken reports whether token is Token(secret, node), in time that
// does not depend on where they differ. An empty secret checks nothing:
// a node without one refuses every caller.
func CheckToken(secret []byte, node, token string) bool {
	if len(secret) == 0 {
		return false
	}
	return hmac.Equal([]byte(Token(secret, node)), []byte(token))
}

// DecodeSecret reads the desired state's peerSecret: hex of 16 to 512
// bytes. The error names the field but never shows the value.
func DecodeSecret(s string) ([]byte, error) {
	const field = "peerSecret"
	if len(s) > 2*MaxSecretBytes {
		return nil, &release.FieldError{Field: field, Reason: fmt.Sprintf("must be at most %d bytes (%d hex digits), got %d digits", MaxSecretBytes, 2*MaxSecretBytes, len(s))}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, &release.FieldError{Field: field, Reason: "must be hex digits (an even number of them)"}
	}
	if len(b) < MinSecretBytes {
		return nil, &release.FieldError{Field: field, Reason: fmt.Sprintf("must be at least %d bytes (%d hex digits), got %d", MinSecretBytes, 2*MinSecretBytes, len(b))}
	}
	return b, nil
}
