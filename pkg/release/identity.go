package release

import (
	"fmt"
	"time"
)

// Identity tells apart two releases published under one version name: a
// name comes free again when retention, `release rm` or the deletion of its
// channel removes the release, and a later publish may reuse it with other
// bytes. The publish's Seq alone is not enough (a recreated channel counts
// from 1 again); with the manager's publish time it is.
//
// The zero Identity means "not known" (an older manager, a node record
// written before identities): whatever is stored under the name is taken.
type Identity struct {
	// Seq is the release's publish order within its channel.
	Seq uint64 `json:"seq"`
	// CreatedAt is when the manager stored the release.
	CreatedAt time.Time `json:"createdAt"`
}

// IsZero reports an unknown identity.
func (id Identity) IsZero() bool { return id.Seq == 0 && id.CreatedAt.IsZero() }

// Matches reports whether a stored release of identity have is the one
// asked for: always when want is unknown.
func (id Identity) Matches(have Identity) bool {
	return id.IsZero() || (id.Seq == have.Seq && id.CreatedAt.Equal(have.CreatedAt))
}

// String is how logs and errors show an identity.
func (id Identity) String() string {
	if id.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("seq %d published %s", id.Seq, id.CreatedAt.UTC().Format(time.RFC3339Nano))
}

// Identity is the release's identity.
func (r Release) Identity() Identity { return Identity{Seq: r.Seq, CreatedAt: r.CreatedAt} }

// Identity is the summarized release's identity.
func (s Summary) Identity() Identity { return Identity{Seq: s.Seq, CreatedAt: s.CreatedAt} }
