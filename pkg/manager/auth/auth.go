// Package auth reads the manager's token file and decides what each bearer
// token may do. Roles (docs/design.md §5.3):
//
//	admin      everything
//	publisher  read everything; create channels, publish, move heads, pin
//	           and pause — only on channels matching its glob
//	node       read channels, releases and manifests; fetch desired state
//	           and report status — only for node names matching its glob
//	reader     read everything, change nothing
package auth

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Role of a token.
type Role string

// Roles.
const (
	RoleAdmin     Role = "admin"
	RolePublisher Role = "publisher"
	RoleNode      Role = "node"
	RoleReader    Role = "reader"
)

// MinTokenLength is the shortest token the file may hold; anything shorter
// is guessable.
const MinTokenLength = 16

// Principal is who a request acts as.
type Principal struct {
	Role Role
	// Scope is the channel glob (publisher) or node-name glob (node); "*"
	// when the file gives none.
	Scope string
	// ID names the token in logs without revealing it: role, file line
	// and a short fingerprint of the token's hash.
	ID string
}

// Action is what a request wants to do.
type Action int

// Actions, from least to most privileged.
const (
	// Read: any GET of channels, releases, manifests, status, nodes.
	Read Action = iota
	// ChangeChannel: create a channel or change one (publish, head, pin,
	// pause, config, release removal).
	ChangeChannel
	// Admin: delete channels.
	Admin
	// Node: fetch desired state and report status as a node.
	Node
)

// String names the action, as the audit log shows it.
func (a Action) String() string {
	switch a {
	case Read:
		return "read"
	case ChangeChannel:
		return "publish" // the audit log's name from before ChangeChannel; it stays
	case Admin:
		return "admin"
	case Node:
		return "node"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Allowed reports whether p may perform act on target: a channel name for
// ChangeChannel, a node name for Node, ignored otherwise.
func (p Principal) Allowed(act Action, target string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RolePublisher:
		return act == Read || (act == ChangeChannel && match(p.Scope, target))
	case RoleNode:
		return act == Read || (act == Node && match(p.Scope, target))
	case RoleReader:
		return act == Read
	}
	return false
}

func match(glob, name string) bool {
	ok, err := path.Match(glob, name)
	return err == nil && ok
}

type entry struct {
	hash [sha256.Size]byte
	p    Principal
}

// Tokens is a parsed token file.
type Tokens struct {
	entries []entry
	// digest is the SHA-256 of the file's bytes (PeerSecret).
	digest [sha256.Size]byte
}

// peerSecretLabel separates the peer secret from any other value that
// might one day be derived from the token file.
const peerSecretLabel = "hydra-peer-secret-v1" //nolint:gosec // G101: a label mixed into the HMAC, not a credential

// PeerSecret is the secret nodes sign their tokens to each other with
// (pkg/peer): HMAC-SHA256 keyed by the SHA-256 of the token file's bytes.
// Every replica that reads the same file derives the same secret, no
// secret is stored anywhere else, and a changed file (a token rotated)
// changes it once the replicas restart with it. It reveals nothing of
// the tokens.
func (t *Tokens) PeerSecret() []byte {
	mac := hmac.New(sha256.New, t.digest[:])
	mac.Write([]byte(peerSecretLabel))
	return mac.Sum(nil)
}

// LoadFile reads a token file: CSV lines TOKEN,ROLE[,GLOB]; blank lines and
// lines starting with '#' are skipped. Any bad line fails the whole file,
// naming the line, so a typo never silently drops a token.
func LoadFile(name string) (*Tokens, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	t, err := Parse(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %s: %w", name, err)
	}
	return t, nil
}

// Parse reads token lines from r (see LoadFile).
func Parse(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	whole := sha256.New()
	sc := bufio.NewScanner(io.TeeReader(r, whole))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseLine(line, n)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, dup := seen[e.hash]; dup {
			return nil, fmt.Errorf("line %d: same token as line %d", n, prev)
		}
		seen[e.hash] = n
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.entries) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	whole.Sum(t.digest[:0])
	return t, nil
}

func parseLine(line string, n int) (entry, error) {
	fields := strings.Split(line, ",")
	for i := range fields {
		fields[i] = strings.TrimSpace(fields[i])
	}
	if len(fields) < 2 || len(fields) > 3 {
		return entry{}, fmt.Errorf("want TOKEN,ROLE[,GLOB], got %d fields", len(fields))
	}
	token, role := fields[0], Role(fields[1])
	if len(token) < MinTokenLength {
		return entry{}, fmt.Errorf("token shorter than %d characters", MinTokenLength)
	}
	switch role {
	case RoleAdmin, RolePublisher, RoleNode, RoleReader:
	default:
		return entry{}, fmt.Errorf("role %q: must be admin, publisher, node or reader", role)
	}
	scope := "*"
	if len(fields) == 3 && fields[2] != "" {
		scope = fields[2]
		if _, err := path.Match(scope, ""); err != nil {
			return entry{}, fmt.Errorf("glob %q: %w", scope, err)
		}
		if role != RolePublisher && role != RoleNode {
			return entry{}, fmt.Errorf("a glob only applies to publisher and node tokens, not %s", role)
		}
	}
	hash := sha256.Sum256([]byte(token))
	id := fmt.Sprintf("%s@line%d:%s", role, n, hex.EncodeToString(hash[:4]))
	return entry{hash: hash, p: Principal{Role: role, Scope: scope, ID: id}}, nil
}

// Lookup finds a token's principal.
//
// Why this is constant-time with respect to the secrets: the presented
// token is hashed once (SHA-256 takes time that depends only on its
// length, which the attacker already knows), and that hash is compared
// with every entry's hash by crypto/subtle, which reads all 32 bytes
// whatever matches; the loop never stops early and takes the same path on
// a match and a miss. So the time of a lookup tells nothing about which
// bytes of a guess were right, nor which entry (if any) matched. Comparing
// hashes rather than the tokens also hides the stored tokens' lengths.
//
// A Go map keyed by the hash would not be constant-time (its bucket walk
// and key compare stop at the first differing byte), though what it leaks
// is about the SHA-256 of a guess, which an attacker cannot steer towards
// a stored hash byte by byte. The linear scan is chosen so that no such
// argument is needed; token files hold tens of lines, not millions.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	hash := sha256.Sum256([]byte(token))
	var found Principal
	ok := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(hash[:], e.hash[:]) == 1 {
			found, ok = e.p, 1
		}
	}
	return found, ok == 1
}
