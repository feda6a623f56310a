package manager

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// sim plays, around decideRollout, what the executor, the kubelet and the
// node agents do, one step per tick of a fake clock: it applies a plan
// (moves stored, pods drained per busy, views flipped to the desired
// release), then lets each pod's Ready follow its containers and its
// data-ready condition. It is the narrow seam of the decision; the
// Kubernetes side is tested against a real API server in tests/rollout.
type sim struct {
	t       *testing.T
	now     time.Time
	channel release.Channel
	rollout release.Rollout
	pods    map[string]podState
	views   map[string]*consumer // by pod UID (one volume per pod here)
	staged  map[string]map[string]bool
	// broken pods never get their containers Ready after a flip.
	broken map[string]bool
	// reloads counts reload actions per pod; events collects reasons.
	reloads map[string]int
	events  []string
	// maxDrained is, per group, the most pods seen not Ready at once.
	maxDrained map[string]int
}

func newSim(t *testing.T, maxUnavailable int, groups map[string][]string) *sim {
	s := &sim{
		t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		channel: release.Channel{Name: "c", Head: "v2", Config: release.Config{Rollout: release.RolloutPolicy{
			MaxUnavailable: maxUnavailable, Drain: release.Duration{Duration: 10 * time.Second}, ReloadTimeout: release.Duration{Duration: 30 * time.Second},
		}}},
		rollout: release.Rollout{Channel: "c"},
		pods:    map[string]podState{}, views: map[string]*consumer{},
		staged: map[string]map[string]bool{"n1": {"v1": true, "v2": true}, "n2": {"v1": true, "v2": true}},
		broken: map[string]bool{}, reloads: map[string]int{}, maxDrained: map[string]int{},
	}
	i := 0
	for group, names := range groups {
		for _, name := range names {
			node := []string{"n1", "n2"}[i%2]
			i++
			uid := "uid-" + name
			s.pods[uid] = podState{UID: uid, Namespace: "ns", Name: name, Node: node, Workload: group, Gated: true,
				DataReady: "True", Ready: true, ContainersReady: true}
			s.views[uid] = &consumer{node: node, view: release.View{VolumeID: "vol-" + name, PodUID: uid, Channel: "c", Current: "v1"}}
		}
	}
	return s
}

func (s *sim) input() rolloutInput {
	in := rolloutInput{now: s.now, channel: s.channel, rollout: s.rollout, staged: s.staged, pods: map[string]podState{}}
	for uid, p := range s.pods {
		in.pods[uid] = p
		in.consumers = append(in.consumers, *s.views[uid])
	}
	return in
}

// step decides once and plays the world's reaction.
func (s *sim) step() rolloutPlan {
	s.t.Helper()
	plan := decideRollout(s.input())
	if err := plan.rollout.Validate(); err != nil {
		s.t.Fatalf("invalid rollout planned: %v", err)
	}
	s.rollout = plan.rollout
	if plan.pause != "" {
		s.channel.Paused, s.channel.PauseReason = true, plan.pause
	}
	for _, e := range plan.events {
		ev := e.reason + " " + e.pod.Name
		if e.claimVolume != "" {
			ev += " and the PVC of " + e.claimVolume
		}
		s.events = append(s.events, ev)
	}
	for _, m := range plan.reloads {
		s.reloads[m.PodUID]++
		for i := range s.rollout.Moves {
			if s.rollout.Moves[i].PodUID == m.PodUID {
				s.rollout.Moves[i].Reloaded = true
			}
		}
	}
	// The kubelet lags: Ready follows the condition as it was before this
	// step, so a drain is only over once a later decision has seen it.
	before := map[string]string{}
	for uid, p := range s.pods {
		before[uid] = p.DataReady
	}
	for uid, busy := range plan.busy {
		p := s.pods[uid]
		p.DataReady = map[bool]string{true: "False", false: "True"}[busy]
		s.pods[uid] = p
	}
	for _, m := range s.rollout.Moves {
		want := m.DesiredVersion()
		c := s.views[m.PodUID]
		if want == "" || c.view.Current == want || !s.staged[c.node][want] {
			continue
		}
		if p := s.pods[m.PodUID]; p.Gated && (p.Ready || p.DataReady != "False") {
			s.t.Fatalf("%s flipped to %s while not drained: %+v", p.Name, want, p)
		}
		c.view.Current = want
		if s.broken[m.PodUID] && want == m.To {
			p := s.pods[m.PodUID]
			p.ContainersReady = false
			s.pods[m.PodUID] = p
		}
		if want == m.From { // rolled back: the old data works again
			p := s.pods[m.PodUID]
			p.ContainersReady = true
			s.pods[m.PodUID] = p
		}
	}
	drained := map[string]int{}
	for uid, p := range s.pods {
		p.Ready = p.ContainersReady && (!p.Gated || before[uid] == "True")
		s.pods[uid] = p
		if !p.Ready {
			drained[p.Workload]++
		}
	}
	for g, n := range drained {
		s.maxDrained[g] = max(s.maxDrained[g], n)
	}
	s.now = s.now.Add(time.Second)
	return plan
}

// run steps until no move is left and every pod is Ready, or n steps.
func (s *sim) run(n int) {
	s.t.Helper()
	for range n {
		s.step()
		if len(s.rollout.Moves) == 0 && s.allReady() && (s.channel.Paused || s.allOn(s.channel.Head)) {
			return
		}
	}
	s.t.Fatalf("rollout did not settle in %d steps: moves %+v", n, s.rollout.Moves)
}

func (s *sim) allReady() bool {
	for _, p := range s.pods {
		if !p.Ready {
			return false
		}
	}
	return true
}

func (s *sim) allOn(version string) bool {
	for _, c := range s.views {
		if c.view.Current != version && c.view.Pinned == "" {
			return false
		}
	}
	return true
}

func (s *sim) current(name string) string { return s.views["uid-"+name].view.Current }

func TestRolloutMovesEveryPodWithinBudget(t *testing.T) {
	for _, tc := range []struct {
		maxUnavailable int
		groups         map[string][]string
	}{
		{1, map[string][]string{"Deployment/ns/web": {"web-a", "web-b", "web-c"}}},
		{2, map[string][]string{"Deployment/ns/web": {"a", "b", "c", "d", "e"}}},
		{1, map[string][]string{"Deployment/ns/web": {"w1", "w2"}, "StatefulSet/ns/db": {"db-0", "db-1"}}},
	} {
		t.Run(fmt.Sprint(tc.maxUnavailable, len(tc.groups)), func(t *testing.T) {
			s := newSim(t, tc.maxUnavailable, tc.groups)
			s.run(200)
			if !s.allOn("v2") {
				t.Fatal("not every view reached the head")
			}
			for g := range tc.groups {
				if s.maxDrained[g] != tc.maxUnavailable {
					t.Errorf("group %s: at most %d pods unavailable at once, want exactly maxUnavailable %d", g, s.maxDrained[g], tc.maxUnavailable)
				}
			}
		})
	}
}

func TestRolloutRollsBackAPodThatFailsAndPauses(t *testing.T) {
	s := newSim(t, 1, map[string][]string{"Deployment/ns/web": {"a", "b", "c"}})
	s.broken["uid-b"] = true
	s.run(500)
	if !s.channel.Paused || !strings.Contains(s.channel.PauseReason, "ns/b rolled back to v1") {
		t.Fatalf("channel paused=%v reason %q, want paused naming ns/b", s.channel.Paused, s.channel.PauseReason)
	}
	if got := []string{s.current("a"), s.current("b"), s.current("c")}; got[0] != "v2" || got[1] != "v1" || got[2] != "v1" {
		t.Fatalf("views a,b,c = %v, want [v2 v1 v1]: a moved, b rolled back, c untouched while paused", got)
	}
	if p := s.pods["uid-b"]; p.DataReady != "True" {
		t.Fatalf("b's condition after the rollback = %q, want True", p.DataReady)
	}
	if !containsString(s.events, "RolledBack b and the PVC of vol-b") {
		t.Fatalf("events %q lack a RolledBack warning for b and its volume's PVC", s.events)
	}
	// The operator fixes the pod and resumes: the rollout completes.
	delete(s.broken, "uid-b")
	s.channel.Paused, s.channel.PauseReason = false, ""
	s.run(500)
	if !s.allOn("v2") {
		t.Fatal("resume did not complete the rollout")
	}
}

func TestRolloutLeavesPinnedAndFlipsUngatedWithWarning(t *testing.T) {
	s := newSim(t, 1, map[string][]string{"Deployment/ns/web": {"pinned", "nogate", "gated"}})
	s.views["uid-pinned"].view.Pinned = "v1"
	p := s.pods["uid-nogate"]
	p.Gated, p.DataReady = false, ""
	s.pods["uid-nogate"] = p
	s.run(200)
	if s.current("pinned") != "v1" || s.current("nogate") != "v2" || s.current("gated") != "v2" {
		t.Fatalf("pinned=%s nogate=%s gated=%s, want v1 v2 v2", s.current("pinned"), s.current("nogate"), s.current("gated"))
	}
	if !containsString(s.events, "NoReadinessGate nogate") {
		t.Fatalf("events %q lack a NoReadinessGate warning for nogate", s.events)
	}
}

func TestRolloutWaitsForStagingAndReloads(t *testing.T) {
	s := newSim(t, 1, map[string][]string{"Deployment/ns/web": {"a", "b"}})
	s.staged["n2"]["v2"] = false // b is on n2
	for uid, reload := range map[string]string{"uid-a": "http://:8080/reload", "uid-b": "http://:8080/reload"} {
		p := s.pods[uid]
		p.Reload = reload
		s.pods[uid] = p
	}
	for range 50 {
		s.step()
	}
	if s.current("a") != "v2" || s.current("b") != "v1" || s.pods["uid-b"].DataReady != "True" {
		t.Fatalf("a=%s b=%s (b condition %q): b must not be drained before v2 is staged on its node",
			s.current("a"), s.current("b"), s.pods["uid-b"].DataReady)
	}
	s.staged["n2"]["v2"] = true
	s.run(100)
	if s.reloads["uid-a"] != 1 || s.reloads["uid-b"] != 1 {
		t.Fatalf("reloads %v, want exactly one per flipped pod", s.reloads)
	}
}

func TestRolloutAbortsDrainWhenPausedOrPodGone(t *testing.T) {
	s := newSim(t, 2, map[string][]string{"Deployment/ns/web": {"a", "b"}})
	s.step() // both start draining
	if len(s.rollout.Moves) != 2 {
		t.Fatalf("moves %+v, want two draining", s.rollout.Moves)
	}
	delete(s.pods, "uid-a")
	delete(s.views, "uid-a")
	s.channel.Paused = true
	plan := s.step()
	if len(plan.rollout.Moves) != 0 || plan.busy["uid-b"] {
		t.Fatalf("after pause: moves %+v busy %v, want none: a draining pod is given back", plan.rollout.Moves, plan.busy)
	}
}

func TestRolloutRestartWaitsForEviction(t *testing.T) {
	s := newSim(t, 1, map[string][]string{"Deployment/ns/web": {"a"}})
	p := s.pods["uid-a"]
	p.Reload = "restart"
	s.pods["uid-a"] = p
	for range 10 {
		s.step()
		// An eviction refused by a PodDisruptionBudget: the executor
		// leaves Reloaded false, so the next decision asks again.
		for i := range s.rollout.Moves {
			s.rollout.Moves[i].Reloaded = false
		}
	}
	if s.reloads["uid-a"] < 5 || len(s.rollout.Moves) != 1 || s.rollout.Moves[0].Phase != release.PhaseReloading {
		t.Fatalf("reloads %d, moves %+v: a blocked eviction must be retried while the move waits", s.reloads["uid-a"], s.rollout.Moves)
	}
	// Evicted: the pod goes, and the move with it.
	delete(s.pods, "uid-a")
	delete(s.views, "uid-a")
	if plan := s.step(); len(plan.rollout.Moves) != 0 {
		t.Fatalf("moves %+v after the pod left", plan.rollout.Moves)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
