package manager

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// The Kubernetes names of docs/design.md §6.
const (
	// ConditionDataReady is the pod condition (and readiness gate) the
	// controller sets False to drain a pod and True when its data is in place.
	ConditionDataReady = "hydra.csi.dev/data-ready"
	// AnnotationReload says how a pod picks up a flipped `current`: "none"
	// (default), "http://:PORT/PATH", or "restart".
	AnnotationReload = "hydra.csi.dev/reload"
)

// Reload kinds of AnnotationReload.
const (
	reloadNone    = "none"
	reloadRestart = "restart"
)

// podState is what the controller observed of one pod through the API
// server, reduced to what its decisions need.
type podState struct {
	UID, Namespace, Name, Node string
	// Workload is the controlling workload, e.g. "Deployment/ns/web"; a
	// pod without a controller is its own workload.
	Workload string
	// Gated: spec.readinessGates names ConditionDataReady.
	Gated bool
	// DataReady is the condition's status: "True", "False" or "" (absent).
	DataReady string
	// Ready and ContainersReady are the pod's conditions of those names.
	Ready, ContainersReady bool
	// Serving: some EndpointSlice lists the pod as a ready endpoint.
	Serving bool
	// Terminating: the pod has a deletion timestamp (an eviction, say).
	Terminating bool
	// Reload is the AnnotationReload value ("" means none).
	Reload string
}

func (p podState) ref() string { return p.Namespace + "/" + p.Name }

// consumer is one view of the channel as a node reported it.
type consumer struct {
	node string
	view release.View
}

// rolloutInput is everything one decision about one channel depends on.
type rolloutInput struct {
	now     time.Time
	channel release.Channel
	// moves in flight, as stored.
	rollout release.Rollout
	// consumers are the channel's views reported by the nodes.
	consumers []consumer
	// staged[node][version]: the release is ready in the node's store.
	staged map[string]map[string]bool
	// pods by UID; a pod missing here is gone from the API server.
	pods map[string]podState
}

// podEvent is a Kubernetes Event to record on a pod.
type podEvent struct {
	pod     podState
	warning bool
	reason  string
	message string
	// claimVolume, when set, is the pod's volume whose PVC gets the Event
	// too.
	claimVolume string
}

// rolloutPlan is what the executor does after a decision: store rollout
// first, then pause the channel, then make each consumer pod's condition
// agree with busy, then reload and record events.
type rolloutPlan struct {
	rollout release.Rollout
	// busy[podUID] is true while a gated move holds the pod drained; every
	// consumer pod of the channel has an entry.
	busy map[string]bool
	// reloads are moves whose pod must be reloaded now (HTTP or eviction);
	// once done the executor sets their Reloaded.
	reloads []release.Move
	events  []podEvent
	// pause, when set, is the reason to pause the channel.
	pause string
}

// decideRollout is the controller's decision for one channel (docs/design.md §6):
// it advances every move in flight by what was observed, starts new moves
// within maxUnavailable per group, and says which pods must be drained.
// It is a pure function: the executor applies its plan, and a controller
// that restarts decides again from the stored moves and what it observes.
func decideRollout(in rolloutInput) rolloutPlan {
	ch := in.channel
	policy := ch.Config.Rollout
	plan := rolloutPlan{rollout: release.Rollout{Channel: ch.Name}, busy: map[string]bool{}}
	views := map[string]consumer{} // by moveKey
	for _, c := range in.consumers {
		views[moveKey(c.view.VolumeID, c.view.PodUID)] = c
		if _, ok := in.pods[c.view.PodUID]; ok {
			plan.busy[c.view.PodUID] = false // until a move says otherwise
		}
	}
	unavailable := map[string]int{} // by group
	moving := map[string]bool{}     // by moveKey
	for _, m := range in.rollout.Moves {
		pod, podOK := in.pods[m.PodUID]
		c, viewOK := views[moveKey(m.VolumeID, m.PodUID)]
		if !podOK || !viewOK {
			continue // the pod or its volume is gone: nothing left to restore
		}
		m, keep := advance(in.now, ch, policy, m, pod, c.view, &plan)
		if !keep {
			continue
		}
		moving[moveKey(m.VolumeID, m.PodUID)] = true
		unavailable[m.Workload]++
		if m.Gated {
			plan.busy[m.PodUID] = true
		}
		plan.rollout.Moves = append(plan.rollout.Moves, m)
	}
	// A consumer pod that is not Ready counts against its group's budget
	// too, as Deployments count it: it may be one this controller has just
	// released and the kubelet has not yet marked Ready again.
	for uid := range plan.busy {
		if pod := in.pods[uid]; !pod.Ready && !plan.busy[uid] && !movingPod(plan.rollout.Moves, uid) {
			unavailable[pod.Workload]++
		}
	}
	if ch.Paused || ch.Head == "" {
		return plan
	}
	var candidates []consumer
	for _, c := range in.consumers {
		v := c.view
		pod, ok := in.pods[v.PodUID]
		if !ok || pod.Terminating || pod.Node != c.node || v.Pinned != "" || v.Current == "" || v.Current == ch.Head ||
			moving[moveKey(v.VolumeID, v.PodUID)] || !in.staged[c.node][ch.Head] {
			continue
		}
		candidates = append(candidates, c)
	}
	slices.SortFunc(candidates, func(a, b consumer) int {
		pa, pb := in.pods[a.view.PodUID], in.pods[b.view.PodUID]
		return cmp.Or(strings.Compare(pa.ref(), pb.ref()), strings.Compare(a.view.VolumeID, b.view.VolumeID))
	})
	for _, c := range candidates {
		pod := in.pods[c.view.PodUID]
		if unavailable[pod.Workload] >= policy.MaxUnavailable {
			continue
		}
		unavailable[pod.Workload]++
		m := release.Move{
			PodUID: pod.UID, PodNamespace: pod.Namespace, PodName: pod.Name, Node: c.node, VolumeID: c.view.VolumeID,
			Workload: pod.Workload, From: c.view.Current, To: ch.Head, Phase: release.PhaseFlipping, Started: in.now, Since: in.now, Gated: pod.Gated,
		}
		if pod.Gated {
			m.Phase = release.PhaseDraining
			plan.busy[pod.UID] = true
		} else {
			plan.events = append(plan.events, podEvent{pod: pod, warning: true, reason: eventNoReadinessGate,
				message: fmt.Sprintf("flipping %s from %s to %s without drain: the pod has no readiness gate %s", ch.Name, m.From, m.To, ConditionDataReady)})
		}
		plan.rollout.Moves = append(plan.rollout.Moves, m)
	}
	return plan
}

// advance moves one stored move on by what was observed; keep is false
// when the move is over.
func advance(now time.Time, ch release.Channel, policy release.RolloutPolicy, m release.Move, pod podState, v release.View, plan *rolloutPlan) (release.Move, bool) {
	timeout := policy.ReloadTimeout.Duration
	setPhase := func(p release.Phase) { m.Phase, m.Since = p, now }
	rollBack := func(reason string) {
		m.Reason = reason
		setPhase(release.PhaseRollingBack)
	}
	switch m.Phase {
	case release.PhaseDraining:
		switch {
		case ch.Paused || ch.Head == "" || ch.Head == v.Current:
			return m, false // nothing flipped yet: give the pod back
		case ch.Head != m.To:
			m.To = ch.Head
		}
		if (!pod.Ready && !pod.Serving) || now.Sub(m.Since) >= policy.Drain.Duration {
			setPhase(release.PhaseFlipping)
		}
		return m, true
	case release.PhaseFlipping:
		if v.Current != m.To {
			if now.Sub(m.Since) > timeout {
				rollBack(fmt.Sprintf("node %s did not flip the view to %s within %s", m.Node, m.To, timeout))
			}
			return m, true
		}
		setPhase(release.PhaseReloading)
		m.Reloaded = false
	case release.PhaseRollingBack:
		if v.Current != m.From {
			return m, true
		}
		reason := fmt.Sprintf("pod %s rolled back to %s: %s", pod.ref(), m.From, m.Reason)
		plan.events = append(plan.events, podEvent{pod: pod, warning: true, reason: eventRolledBack, message: ch.Name + ": " + reason,
			claimVolume: m.VolumeID})
		if plan.pause == "" {
			plan.pause = reason
		}
		return m, false
	}
	// Reloading, possibly since just now.
	kind := reloadKind(pod.Reload)
	late := now.Sub(m.Since) > timeout
	switch {
	case v.Current != m.To:
		setPhase(release.PhaseFlipping) // flipped back under us: flip again
	case kind == reloadRestart:
		// The evicted pod leaves; the move ends when it is gone (its
		// replacement mounts the head). A PodDisruptionBudget that
		// refuses the eviction makes the rollout wait, not fail.
		if !m.Reloaded {
			plan.reloads = append(plan.reloads, m)
		}
	case kind != reloadNone && !m.Reloaded:
		if late {
			rollBack(fmt.Sprintf("reload %s did not succeed within %s", pod.Reload, timeout))
			break
		}
		plan.reloads = append(plan.reloads, m)
	case pod.ContainersReady:
		plan.events = append(plan.events, podEvent{pod: pod, reason: eventDataFlipped,
			message: fmt.Sprintf("%s: now serving %s (was %s)", ch.Name, m.To, m.From)})
		return m, false
	case late:
		rollBack(fmt.Sprintf("containers not Ready within %s after the flip to %s", timeout, m.To))
	}
	return m, true
}

// reloadKind is "none", "restart" or "http".
func reloadKind(annotation string) string {
	switch annotation {
	case "", reloadNone:
		return reloadNone
	case reloadRestart:
		return reloadRestart
	}
	return "http"
}

func moveKey(volumeID, podUID string) string { return volumeID + "/" + podUID }

func movingPod(moves []release.Move, uid string) bool {
	return slices.ContainsFunc(moves, func(m release.Move) bool { return m.PodUID == uid })
}
