package release

import (
	"fmt"
	"time"
)

// Phase of one pod's move in a Kubernetes rollout (docs/design.md §6).
type Phase string

// Phases of a Move, in order; RollingBack replaces Flipping or Reloading
// when the pod fails.
const (
	// PhaseDraining: the pod's data-ready condition is False; waiting until
	// it is out of its Service endpoints or the channel's drain time passes.
	PhaseDraining Phase = "draining"
	// PhaseFlipping: the view's desired release is To; waiting for the node
	// to report the flip.
	PhaseFlipping Phase = "flipping"
	// PhaseReloading: the view shows To; the reload was asked (Reloaded)
	// and the pod's containers have reloadTimeout to be Ready.
	PhaseReloading Phase = "reloading"
	// PhaseRollingBack: the pod failed; the view's desired release is From
	// again, and the channel is paused once the node reports it.
	PhaseRollingBack Phase = "rollingBack"
)

// Move is the rollout controller's record of one pod it is moving from one
// release to another. It is stored before anything is done to the pod, so
// a controller that restarts knows every pod it had taken out of service.
type Move struct {
	PodUID       string `json:"podUID"`
	PodNamespace string `json:"podNamespace"`
	PodName      string `json:"podName"`
	Node         string `json:"node"`
	VolumeID     string `json:"volumeID"`
	// Workload is the pod's workload ("Deployment/ns/name", …):
	// maxUnavailable counts per workload. Stored as "group" (docs/design.md §11).
	Workload string `json:"group"`
	From     string `json:"from"`
	To       string `json:"to"`
	Phase    Phase  `json:"phase"`
	// Started is when the move began; Since when its phase did.
	Started time.Time `json:"started"`
	Since   time.Time `json:"since"`
	// Gated: the pod declares the data-ready readiness gate, so the move
	// drains it; a pod without the gate moves without drain.
	Gated bool `json:"gated,omitempty"`
	// Reloaded: the reload (HTTP POST or eviction) was done for this flip.
	Reloaded bool `json:"reloaded,omitempty"`
	// Reason says why a move is rolling back.
	Reason string `json:"reason,omitempty"`
}

// Rollout is every move in flight on one channel.
type Rollout struct {
	Channel string `json:"channel"`
	Moves   []Move `json:"moves"`
}

// Validate checks the names a rollout record carries, so that a damaged
// record cannot steer a node's view to a bogus release.
func (r Rollout) Validate() error {
	if err := validateLabel("channel", r.Channel); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, m := range r.Moves {
		f := fmt.Sprintf("moves[%d]", i)
		switch {
		case m.PodUID == "":
			return &FieldError{Field: f + ".podUID", Reason: "is required"}
		case m.VolumeID == "":
			return &FieldError{Field: f + ".volumeID", Reason: "is required"}
		case seen[m.VolumeID+"/"+m.PodUID]:
			return &FieldError{Field: f, Value: m.VolumeID + "/" + m.PodUID, Reason: "moves this volume of this pod twice"}
		}
		seen[m.VolumeID+"/"+m.PodUID] = true
		if err := ValidateNodeName(m.Node); err != nil {
			return fmt.Errorf("%s.node: %w", f, err)
		}
		for _, v := range []struct{ field, value string }{{"from", m.From}, {"to", m.To}} {
			if err := ValidateVersion(v.value); err != nil {
				return fmt.Errorf("%s.%s: %w", f, v.field, err)
			}
		}
		switch m.Phase {
		case PhaseDraining, PhaseFlipping, PhaseReloading, PhaseRollingBack:
		default:
			return &FieldError{Field: f + ".phase", Value: string(m.Phase), Reason: "is not a phase"}
		}
	}
	return nil
}

// DesiredVersion is the release the move wants the pod's view to show, or
// "" while the pod drains (the view keeps what it has).
func (m Move) DesiredVersion() string {
	switch m.Phase {
	case PhaseFlipping, PhaseReloading:
		return m.To
	case PhaseRollingBack:
		return m.From
	}
	return ""
}
