package source

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// NodeCredentials is the ID of the node's own credential chain (the
// environment, config files, instance or pod roles): a nil *Credentials.
const NodeCredentials = "node"

// ErrDenied means the store refused the credentials access to an object
// (HTTP 403: no permission, unknown key, bad signature).
var ErrDenied = errors.New("access denied")

// Credentials are static S3 credentials of one volume (the CSI node-stage
// or node-publish secret of its StorageClass). A nil *Credentials is the
// node's own chain.
//
// They never print: String and ID give a one-way hash, and the keys sit
// behind a pointer in unexported fields, so even a struct that holds
// Credentials printed raw with %+v shows an address, and JSON shows {}.
type Credentials struct {
	id   string
	keys *staticKeys
}

type staticKeys struct {
	accessKeyID, secretAccessKey, sessionToken string
}

// NewCredentials returns the credentials of an access key, its secret and
// an optional session token. The key and the secret are required.
func NewCredentials(accessKeyID, secretAccessKey, sessionToken string) (*Credentials, error) {
	if accessKeyID == "" || secretAccessKey == "" {
		return nil, errors.New("source: credentials need an access key ID and a secret access key")
	}
	// The ID is a hash of all three values, length-prefixed so that no two
	// triples collide by concatenation. Secret access keys are random, 40
	// characters on AWS: the hash cannot be turned back into them.
	h := sha256.New()
	for _, v := range []string{"hydra s3 credentials v1", accessKeyID, secretAccessKey, sessionToken} {
		_, _ = fmt.Fprintf(h, "%d:%s,", len(v), v) // a netstring per value; a hash never fails a write
	}
	return &Credentials{
		id:   "s3-" + hex.EncodeToString(h.Sum(nil)[:16]),
		keys: &staticKeys{accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken},
	}, nil
}

// ID names the credentials without revealing them: "node" for the node's
// chain, else "s3-" and 32 hex digits. It is safe to log and to store.
func (c *Credentials) ID() string {
	if c == nil {
		return NodeCredentials
	}
	return c.id
}

// String is ID: credentials print as their hash.
func (c *Credentials) String() string { return "credentials " + c.ID() }

// provider is what the AWS SDK signs with.
func (c *Credentials) provider() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.keys.accessKeyID, c.keys.secretAccessKey, c.keys.sessionToken)
}

// Keyring remembers the credentials that CSI requests brought, by ID, for
// the life of the process: the node agent needs a volume's credentials to
// check a release before it flips the volume's views to it, long after the
// request that brought them. Nothing of it is written anywhere.
type Keyring struct {
	mu   sync.Mutex
	keys map[string]*Credentials
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring { return &Keyring{keys: map[string]*Credentials{}} }

// Add remembers c; the node's chain (nil) needs no remembering.
func (k *Keyring) Add(c *Credentials) {
	if c == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[c.id] = c
}

// Get returns the credentials of an ID: nil and true for the node's chain
// ("node", or "" as records written before per-volume credentials say),
// false when this process has not seen them (it restarted since).
func (k *Keyring) Get(id string) (*Credentials, bool) {
	if id == "" || id == NodeCredentials {
		return nil, true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.keys[id]
	return c, ok
}
