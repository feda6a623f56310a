package release

import (
	"fmt"
	"net"
	"strconv"
)

// Peer distribution (docs/node.md, "Fetching from peers"): nodes serve the
// releases they hold to each other, and the manager, which knows from the
// node reports who holds or fetches what, names in each node's desired
// state the peers to fetch a release from. These are the wire types.

// PeerInfo is how a node serving peers is reached, as it reports it.
type PeerInfo struct {
	// Address is host:port other nodes dial (--peer-advertise).
	Address string `json:"address"`
	// Zone is the zone the node reports (--zone); the manager prefers the
	// zone of the Kubernetes Node (topology.kubernetes.io/zone) when it
	// knows one.
	Zone string `json:"zone,omitempty"`
}

// Peer is one node the manager names as a source of a release.
type Peer struct {
	Node    string `json:"node"`
	Address string `json:"address"`
}

// PeerSet names the peers one node fetches one release from.
type PeerSet struct {
	Channel string `json:"channel"`
	// Version is the release (wire name "release").
	Version  string   `json:"release"`
	Identity Identity `json:"identity,omitzero"`
	// Holders have the release installed, in the order this node should
	// prefer them (the manager varies it from node to node).
	Holders []Peer `json:"holders,omitempty"`
	// Swarm are the nodes of this node's zone fetching the release now,
	// this node among them, in the one order every member is sent. Each
	// part of the release goes from the origin to one member and from
	// member to member down a tree that this order and the part's number
	// fix (pkg/peer.Plan).
	Swarm []Peer `json:"swarm,omitempty"`
}

// Limits of the peer fields, for Validate.
const (
	// MaxPeerAddressLength bounds host:port (a DNS name and a port).
	MaxPeerAddressLength = 261
	// MaxZoneLength is a Kubernetes label value's limit.
	MaxZoneLength = 63
	// MaxPeersPerRelease bounds Holders and Swarm each.
	MaxPeersPerRelease = 256
)

// ValidatePeerAddress checks a host:port with a numeric port in 1..65535.
func ValidatePeerAddress(field, addr string) error {
	if err := ValidateText(field, addr, MaxPeerAddressLength); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return invalid(field, addr, "must be host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return invalid(field, addr, "port must be a number from 1 to 65535")
	}
	return nil
}

func (p PeerInfo) validate() error {
	if err := ValidatePeerAddress("address", p.Address); err != nil {
		return err
	}
	return ValidateText("zone", p.Zone, MaxZoneLength)
}

func (p Peer) validate() error {
	if err := ValidateNodeName(p.Node); err != nil {
		return err
	}
	return ValidatePeerAddress("address", p.Address)
}

// Validate checks what a node is told about one release's peers.
func (r PeerSet) Validate() error {
	if err := ValidateChannelName(r.Channel); err != nil {
		return err
	}
	if err := ValidateVersion(r.Version); err != nil {
		return err
	}
	for _, list := range []struct {
		field string
		peers []Peer
	}{{"holders", r.Holders}, {"swarm", r.Swarm}} {
		if len(list.peers) > MaxPeersPerRelease {
			return invalid(list.field, "", "at most %d peers, got %d", MaxPeersPerRelease, len(list.peers))
		}
		for i, p := range list.peers {
			if err := p.validate(); err != nil {
				return prefixed(fmt.Sprintf("%s[%d]", list.field, i), err)
			}
		}
	}
	return nil
}
