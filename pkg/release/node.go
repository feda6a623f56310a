package release

import (
	"fmt"
	"time"
)

// State of a release on a node.
type State string

// Release states a node reports.
const (
	StatePending     State = "pending"     // wanted, not started
	StateDownloading State = "downloading" // bytes moving
	StateReady       State = "ready"       // verified and installed in the store
	StateFailed      State = "failed"      // gave up; Error says why
)

// ErrorKind sorts a failed download's Error for whoever acts on it (the
// manager's Kubernetes Events); the text stays in Error.
type ErrorKind string

// Error kinds a node reports.
const (
	// ErrorKindOther is any failure not sorted below (empty on the wire).
	ErrorKindOther ErrorKind = ""
	// ErrorKindNoSpace: the node's disk or RAM tier cannot hold the
	// release (ResourceExhausted at the CSI edge).
	ErrorKindNoSpace ErrorKind = "NoSpace"
)

// Progress is one release's state on one node.
type Progress struct {
	Channel    string `json:"channel"`
	Version    string `json:"version"`
	State      State  `json:"state"`
	BytesDone  int64  `json:"bytesDone"`
	BytesTotal int64  `json:"bytesTotal"`
	Error      string `json:"error,omitempty"`
	// ErrorKind sorts Error; set only with Error.
	ErrorKind ErrorKind `json:"errorKind,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
	// BytesFromPeers and BytesFromOrigin split the bytes this node's
	// process fetched for the release by where they came from (peer
	// distribution); BytesServed is what it served of the release to
	// other nodes. All count since the node plugin started.
	BytesFromPeers  int64 `json:"bytesFromPeers,omitempty"`
	BytesFromOrigin int64 `json:"bytesFromOrigin,omitempty"`
	BytesServed     int64 `json:"bytesServed,omitempty"`
}

// View is one pod's view of a channel on a node, as the node reports it.
type View struct {
	VolumeID     string `json:"volumeID"`
	PodUID       string `json:"podUID,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodNamespace string `json:"podNamespace,omitempty"`
	Channel      string `json:"channel"`
	// Current is the release `current` points at.
	Current string `json:"current"`
	// Pinned is set when the volume is pinned to a release (never flipped).
	Pinned string `json:"pinned,omitempty"`
	// Medium is "disk" or "memory".
	Medium string `json:"medium,omitempty"`
}

// NodeStatus is what a node agent reports about itself.
type NodeStatus struct {
	Node       string     `json:"node"`
	Releases   []Progress `json:"releases"`
	Views      []View     `json:"views"`
	ReportedAt time.Time  `json:"reportedAt"`
	// Peer is set when the node serves releases to other nodes
	// (--peer-listen); only such nodes are named as peers or sent any.
	Peer *PeerInfo `json:"peer,omitempty"`
	// PeerServedBytes is everything the node served to peers since its
	// plugin started.
	PeerServedBytes int64 `json:"peerServedBytes,omitempty"`
	// Labels are the labels the node plugin reports (--node-labels), for
	// warm channels' selectors without Kubernetes; a Kubernetes Node's own
	// labels win when the manager sees the Node.
	Labels map[string]string `json:"labels,omitempty"`
}

// MaxNodeEntries bounds the releases and views one report may carry.
const MaxNodeEntries = 10000

// Validate checks names and versions in a report, so that a node cannot
// plant a bogus channel or release name in the manager's state.
func (s NodeStatus) Validate() error {
	if err := ValidateNodeName(s.Node); err != nil {
		return err
	}
	if len(s.Releases) > MaxNodeEntries {
		return invalid("releases", "", "at most %d entries per report, got %d", MaxNodeEntries, len(s.Releases))
	}
	if len(s.Views) > MaxNodeEntries {
		return invalid("views", "", "at most %d entries per report, got %d", MaxNodeEntries, len(s.Views))
	}
	if s.Peer != nil {
		if err := s.Peer.validate(); err != nil {
			return prefixed("peer", err)
		}
	}
	if err := validateLabels("labels", s.Labels); err != nil {
		return err
	}
	if s.PeerServedBytes < 0 {
		return invalid("peerServedBytes", fmt.Sprint(s.PeerServedBytes), "must not be negative")
	}
	for i, p := range s.Releases {
		if err := p.validate(); err != nil {
			return prefixed(fmt.Sprintf("releases[%d]", i), err)
		}
	}
	for i, v := range s.Views {
		if err := v.validate(); err != nil {
			return prefixed(fmt.Sprintf("views[%d]", i), err)
		}
	}
	return nil
}

func (p Progress) validate() error {
	if err := ValidateChannelName(p.Channel); err != nil {
		return err
	}
	if err := ValidateVersion(p.Version); err != nil {
		return err
	}
	switch p.State {
	case StatePending, StateDownloading, StateReady, StateFailed:
	default:
		return invalid("state", string(p.State), "must be pending, downloading, ready or failed")
	}
	if p.BytesDone < 0 || p.BytesDone > MaxReleaseSize {
		return invalid("bytesDone", fmt.Sprint(p.BytesDone), "must not be negative or over %d (1 EiB)", int64(MaxReleaseSize))
	}
	if p.BytesTotal < 0 || p.BytesTotal > MaxReleaseSize {
		return invalid("bytesTotal", fmt.Sprint(p.BytesTotal), "must not be negative or over %d (1 EiB)", int64(MaxReleaseSize))
	}
	for _, c := range []struct {
		field string
		n     int64
	}{{"bytesFromPeers", p.BytesFromPeers}, {"bytesFromOrigin", p.BytesFromOrigin}, {"bytesServed", p.BytesServed}} {
		if c.n < 0 {
			return invalid(c.field, fmt.Sprint(c.n), "must not be negative")
		}
	}
	switch p.ErrorKind {
	case ErrorKindOther, ErrorKindNoSpace:
	default:
		return invalid("errorKind", string(p.ErrorKind), "must be empty or NoSpace")
	}
	return nil
}

// Limits of the names a node reports about a pod: Kubernetes' own for
// names (DNS-1123 subdomain) and namespaces (label), a UID's text form with
// room to spare, and the CSI volume ID.
const (
	maxPodNameLength      = 253
	maxPodNamespaceLength = 63
	maxPodUIDLength       = 128
	maxVolumeIDLength     = 256
)

func (v View) validate() error {
	if v.VolumeID == "" {
		return invalid("volumeID", v.VolumeID, "must be 1 to %d characters", maxVolumeIDLength)
	}
	// These names are shown to operators as they are: refuse anything a
	// terminal would act on rather than show.
	names := []struct {
		field, value string
		limit        int
	}{
		{"volumeID", v.VolumeID, maxVolumeIDLength},
		{"podUID", v.PodUID, maxPodUIDLength},
		{"podName", v.PodName, maxPodNameLength},
		{"podNamespace", v.PodNamespace, maxPodNamespaceLength},
	}
	for _, n := range names {
		if err := ValidateText(n.field, n.value, n.limit); err != nil {
			return err
		}
	}
	switch v.Medium {
	case "", MediumDisk, MediumMemory:
	default:
		return invalid("medium", v.Medium, `must be empty, "disk" or "memory"`)
	}
	if err := ValidateChannelName(v.Channel); err != nil {
		return err
	}
	if v.Current != "" {
		if err := validateToken("current", v.Current, MaxVersionLength); err != nil {
			return err
		}
	}
	if v.Pinned != "" {
		return validateToken("pinned", v.Pinned, MaxVersionLength)
	}
	return nil
}

// ValidateNodeName checks a Kubernetes node name (DNS-1123 subdomain).
func ValidateNodeName(name string) error {
	const field = "node"
	if name == "" || len(name) > 253 {
		return invalid(field, name, "must be 1 to 253 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLowerAlnum(c) && c != '-' && c != '.' {
			return invalid(field, name, "must be a DNS-1123 subdomain (lower-case letters, digits, '-', '.')")
		}
	}
	if !isLowerAlnum(name[0]) || !isLowerAlnum(name[len(name)-1]) {
		return invalid(field, name, "must start and end with a letter or digit")
	}
	return nil
}

// Desired is what the manager wants a node to hold and show. The node
// long-polls it; Index grows with every change that can alter it.
type Desired struct {
	Node     string           `json:"node"`
	Index    uint64           `json:"index"`
	Channels []DesiredChannel `json:"channels"`
	// Views carries per-pod flip targets set by the rollout controller.
	Views []DesiredView `json:"views"`
	// PeerSecret (hex) signs and checks the tokens nodes show each other
	// (pkg/peer.Token); sent only to nodes that serve peers.
	PeerSecret string `json:"peerSecret,omitempty"`
	// Peers names, per release this node is to fetch, where to take it
	// from besides the origin; empty when it has no peers.
	Peers []PeerSet `json:"peers,omitempty"`
}

// DesiredChannel is one channel's state as a node needs it.
type DesiredChannel struct {
	Name     string `json:"name"`
	Head     string `json:"head,omitempty"`
	Pinned   string `json:"pinned,omitempty"`
	NodeKeep int    `json:"nodeKeep"`
	Paused   bool   `json:"paused,omitempty"`
	// HeadIdentity and PinnedIdentity tell the head's and the pin's
	// publish from an earlier release of the same name; absent (zero)
	// from a manager that does not send them.
	HeadIdentity   Identity `json:"headIdentity,omitzero"`
	PinnedIdentity Identity `json:"pinnedIdentity,omitzero"`
	// Warm, when set (MediumDisk or MediumMemory), asks the node to keep
	// the head (and a rollout's target) on that medium although no pod
	// uses the channel: the node matches the channel's warm selector.
	Warm string `json:"warm,omitempty"`
	// NodeQuota is the channel's Config.NodeQuota (0: none).
	NodeQuota int64 `json:"nodeQuota,omitempty"`
}

// DesiredView asks the node to point one pod's view at a release.
type DesiredView struct {
	VolumeID string `json:"volumeID"`
	PodUID   string `json:"podUID,omitempty"`
	Channel  string `json:"channel"`
	// Version is the flip's target in Channel (wire name "release").
	Version string `json:"release"`
	// ReleaseIdentity is Version's identity; zero when not known.
	ReleaseIdentity Identity `json:"releaseIdentity,omitzero"`
}

// String shows a flip as logs and tests print it: {volume pod channel
// release}, and the release's identity when there is one.
func (v DesiredView) String() string {
	if v.ReleaseIdentity.IsZero() {
		return fmt.Sprintf("{%s %s %s %s}", v.VolumeID, v.PodUID, v.Channel, v.Version)
	}
	return fmt.Sprintf("{%s %s %s %s (%s)}", v.VolumeID, v.PodUID, v.Channel, v.Version, v.ReleaseIdentity)
}
