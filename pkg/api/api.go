// Package api defines the JSON bodies of the manager's HTTP API under /v1.
// The manager's HTTP layer, its core and the Go client share these types,
// so the wire format is written down once.
package api

import (
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// CreateChannelRequest is the body of POST /v1/channels. Zero config
// fields take their defaults.
type CreateChannelRequest struct {
	Name   string         `json:"name"`
	Config release.Config `json:"config"`
}

// ChannelDetail is GET /v1/channels/{channel}: the channel, its releases in
// publish order, and how its nodes and pods stand.
type ChannelDetail struct {
	Channel  release.Channel   `json:"channel"`
	Releases []release.Summary `json:"releases"`
	Status   ChannelStatus     `json:"status"`
}

// ChannelList is GET /v1/channels.
type ChannelList struct {
	Channels []release.Channel `json:"channels"`
}

// ReleaseList is GET /v1/channels/{channel}/releases.
type ReleaseList struct {
	Releases []release.Summary `json:"releases"`
}

// PublishRequest is the body of POST /v1/channels/{channel}/releases.
type PublishRequest struct {
	Version  string            `json:"version"`
	Datasets []release.Dataset `json:"datasets"`
	// NoPromote stores the release without moving the head to it.
	NoPromote bool `json:"noPromote,omitempty"`
	// AllowDatasetChange lets the release's dataset names differ from the
	// head's; without it such a publish is refused (field "datasets").
	AllowDatasetChange bool `json:"allowDatasetChange,omitempty"`
}

// PublishResponse tells what a publish did.
type PublishResponse struct {
	Release  release.Summary `json:"release"`
	Promoted bool            `json:"promoted"`
	Head     string          `json:"head"`
}

// VersionRequest names a release: PUT .../head and PUT .../pin.
type VersionRequest struct {
	Version string `json:"version"`
}

// RollbackRequest is POST .../rollback; an empty To undoes the newest head
// move that no rollback undid yet (see GET .../history).
type RollbackRequest struct {
	To string `json:"to,omitempty"`
}

// History is GET /v1/channels/{channel}/history: every recorded head
// move, oldest first.
type History struct {
	Moves []release.HeadMove `json:"moves"`
}

// ConfigChange is one channel setting a PATCH .../config changed: its
// JSON path ("rollout.drain") and the old and new values as JSON ("unset"
// for none).
type ConfigChange struct {
	Setting string `json:"setting"`
	Old     string `json:"old"`
	New     string `json:"new"`
}

// ConfigResponse answers PATCH /v1/channels/{channel}/config, whose body
// is a JSON merge patch of the channel's config: the channel after the
// change and what changed (empty when the patch changed nothing).
type ConfigResponse struct {
	Channel release.Channel `json:"channel"`
	Changes []ConfigChange  `json:"changes"`
}

// PauseRequest is POST .../pause.
type PauseRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ChannelStatus is how a channel is served: per node, its download
// progress for the channel's releases; per pod, the release it sees.
type ChannelStatus struct {
	Nodes []NodeProgress `json:"nodes"`
	Pods  []PodView      `json:"pods"`
	// Warm are the reporting nodes whose labels match the channel's warm
	// selector, by name; absent when the channel has none.
	Warm []WarmNode `json:"warm,omitempty"`
}

// WarmNode is a node that keeps the channel's head with no pod.
type WarmNode struct {
	Node string `json:"node"`
	// Medium is where it keeps the head: "disk" or "memory".
	Medium string `json:"medium"`
	// HeadReady: the node reports the head stored and ready.
	HeadReady bool `json:"headReady"`
	// Stale: the node's last report is older than the TTL.
	Stale bool `json:"stale,omitempty"`
}

// NodeProgress is one node's progress on one channel.
type NodeProgress struct {
	Node       string             `json:"node"`
	ReportedAt time.Time          `json:"reportedAt"`
	Releases   []release.Progress `json:"releases"`
	// Stale: the node's last report is older than the manager's
	// --node-report-ttl; it no longer protects releases.
	Stale bool `json:"stale,omitempty"`
}

// PodView is one pod's view of a channel, as the channel's status shows
// it: the view its node reports, and the rollout's move of it.
type PodView struct {
	Node string `json:"node"`
	release.View
	// Phase is the rollout controller's phase for this pod (draining,
	// flipping, reloading, rollingBack) and To the version the phase moves
	// the view to (the move's From while rolling back); both empty when the
	// pod is not being moved. Their wire names predate the glossary and
	// stay (docs/design.md §11).
	Phase release.Phase `json:"rollout,omitempty"`
	To    string        `json:"target,omitempty"`
	// Stale: the node's report is past the TTL, so this view does not
	// block deleting the channel.
	Stale bool `json:"stale,omitempty"`
}

// NodeList is GET /v1/nodes.
type NodeList struct {
	Nodes []NodeReport `json:"nodes"`
}

// NodeReport is a node's last report as the manager holds it: ReportedAt
// is when the manager received it (never the node's own clock), and Stale
// says it is older than the manager's --node-report-ttl.
type NodeReport struct {
	release.NodeStatus
	Stale bool `json:"stale,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	// Code is a stable, machine-readable reason (see the Code* constants).
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending input, when one is to blame.
	Field string `json:"field,omitempty"`
}

// ErrorResponse wraps Error so an error body is recognisable as one.
type ErrorResponse struct {
	Error Error `json:"error"`
}

// Error codes.
const (
	CodeInvalid      = "InvalidArgument"
	CodeNotFound     = "NotFound"
	CodeExists       = "AlreadyExists"
	CodeConflict     = "Conflict"
	CodeUnauthorized = "Unauthenticated"
	CodeForbidden    = "PermissionDenied"
	CodeTooLarge     = "PayloadTooLarge"
	CodeUnavailable  = "Unavailable"
	CodeInternal     = "Internal"
)
