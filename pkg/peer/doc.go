// Package peer lets nodes fetch releases from each other, with the object
// store as the origin (docs/node.md, "Fetching from peers").
//
// A node plugin started with --peer-listen serves the files of the
// releases it holds: those installed in its store, and the journaled parts
// of a download in flight. Another node reads them with one request per
// part:
//
//	GET /v1/peer/releases/{channel}/{release}/{dataset}/{path...}
//	Authorization: Bearer <Token(secret, requesting node)>
//	X-Hydra-Node: <requesting node>
//	X-Hydra-Release-Identity: <seq>@<createdAt, RFC 3339 with nanoseconds>   (optional)
//	X-Hydra-Wait: <milliseconds>   how long the server may wait for bytes not journaled yet (0..MaxWait)
//	Range: bytes=<first>-<last>     exactly one range, required
//
// Answers: 206 with the bytes (Content-Range, Content-Length); 400 for a
// malformed request, naming the field; 401 for a missing or wrong token;
// 404 when the node does not hold the release (or holds another publish
// of its name, or one fetched with a volume's own credentials, or the
// dataset or file is not in it); 405 for anything but GET; 416 for a range
// outside the file; 429 when all upload streams are busy (at once for a
// request that may not wait, else once its wait is over); 503 when the
// node is fetching the release but the bytes were not journaled within
// the wait. Nothing but ranges of files of releases is ever read, and
// paths are checked as manifest paths before they touch the filesystem.
//
// The secret comes from the manager in the desired state (PeerSecret):
// every node that serves peers gets the same one, so a token proves that
// the caller fetched its desired state with a node token.
package peer

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Protocol constants.
const (
	// PathPrefix starts every peer request's path.
	PathPrefix = "/v1/peer/releases/"
	// HeaderNode names the requesting node.
	HeaderNode = "X-Hydra-Node"
	// HeaderIdentity carries the wanted publish's identity.
	HeaderIdentity = "X-Hydra-Release-Identity"
	// HeaderWait is how long, in milliseconds, the server may wait for
	// bytes it has not journaled yet.
	HeaderWait = "X-Hydra-Wait"
	// MaxWait bounds HeaderWait.
	MaxWait = 30 * time.Second
)

// Errors of Store.OpenRange and of Client.ReadRange.
var (
	// ErrNotHeld: the node does not hold the release, the dataset or the
	// file (404).
	ErrNotHeld = errors.New("peer does not hold it")
	// ErrNotYet: the node is fetching the release but does not have the
	// bytes yet (503).
	ErrNotYet = errors.New("peer does not have the bytes yet")
	// ErrOutOfRange: the range is outside the file (416).
	ErrOutOfRange = errors.New("range outside the file")
	// ErrBusy: every upload stream of the peer is taken (429).
	ErrBusy = errors.New("peer busy")
	// ErrUnauthorized: the peer refused the token (401).
	ErrUnauthorized = errors.New("peer refused the token")
	// ErrSlow: the peer sent slower than the floor.
	ErrSlow = errors.New("peer slower than the floor")
	// ErrBadAnswer: the peer answered something the protocol does not
	// allow (a wrong status, length or Content-Range).
	ErrBadAnswer = errors.New("peer answered outside the protocol")
)

// RangeRequest names bytes [Off, Off+N) of one file of one release.
type RangeRequest struct {
	Channel, Version string
	// Identity is the publish wanted; zero takes whatever is stored
	// under the name.
	Identity release.Identity
	// Dataset and Path name the file as the manifest does.
	Dataset, Path string
	Off, N        int64
}

// Store is the node's side of serving: the cache implements it.
type Store interface {
	// OpenRange returns the bytes of r when the node holds them: from an
	// installed release fetched with the node's own credentials, or from
	// journaled parts of a download in flight. When the node is fetching
	// the release (or starts to within wait) but has not journaled the
	// bytes, it waits up to wait for them and then fails with ErrNotYet.
	// ErrNotHeld when it does not hold them; ErrOutOfRange for a range
	// outside the file. The reader yields exactly r.N bytes.
	OpenRange(ctx context.Context, r RangeRequest, wait time.Duration) (io.ReadCloser, error)
}
