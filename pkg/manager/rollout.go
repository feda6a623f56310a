package manager

import (
	"sort"

	"github.com/hydra-csi/hydra/pkg/release"
)

// planFlips is the rollout decision without a Kubernetes API (docs/design.md §6):
// per channel, views move to the head at most maxUnavailable at a time,
// each once the head is ready on its node; the next ones move when those
// report the head as current. Pinned volumes and paused channels never
// move. It is a pure function of stored state, so every replica plans the
// same flips. The result maps a node to the flips asked of it.
func planFlips(chans []release.Channel, nodes []release.NodeStatus) map[string][]release.DesiredView {
	type nodeView struct {
		node string
		view release.View
	}
	ready := map[[3]string]bool{} // node, channel, version
	byChannel := map[string][]nodeView{}
	for _, n := range nodes {
		for _, p := range n.Releases {
			if p.State == release.StateReady {
				ready[[3]string{n.Node, p.Channel, p.Version}] = true
			}
		}
		for _, v := range n.Views {
			byChannel[v.Channel] = append(byChannel[v.Channel], nodeView{n.Node, v})
		}
	}
	plan := map[string][]release.DesiredView{}
	for _, ch := range chans {
		if ch.Head == "" || ch.Paused {
			continue
		}
		views := byChannel[ch.Name]
		sort.Slice(views, func(i, j int) bool {
			a, b := views[i], views[j]
			return a.node+"/"+a.view.VolumeID+"/"+a.view.PodUID < b.node+"/"+b.view.VolumeID+"/"+b.view.PodUID
		})
		budget := ch.Config.Rollout.MaxUnavailable
		for _, nv := range views {
			if budget == 0 {
				break
			}
			v := nv.view
			if v.Pinned != "" || v.Current == ch.Head || !ready[[3]string{nv.node, ch.Name, ch.Head}] {
				continue
			}
			plan[nv.node] = append(plan[nv.node], release.DesiredView{VolumeID: v.VolumeID, PodUID: v.PodUID, Channel: ch.Name, Version: ch.Head})
			budget--
		}
	}
	return plan
}
