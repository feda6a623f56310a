package manager

import (
	"fmt"
	"sort"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Reasons of the Kubernetes Events the rollout controller records
// (docs/operations.md, Events).
const (
	eventDataFlipped     = "DataFlipped"
	eventNoReadinessGate = "NoReadinessGate"
	eventReloadFailed    = "ReloadFailed"
	eventRolledBack      = "RolledBack"
	// eventDownloadFailed and eventInsufficientSpace go on the pods with a
	// view of the channel on the node whose download failed, and on their
	// PVCs: the node plugin has no Kubernetes API access, so the manager
	// tells what the node reported.
	eventDownloadFailed    = "DownloadFailed"
	eventInsufficientSpace = "InsufficientSpace"
)

// eventReasons label hydra_manager_events_total.
var eventReasons = []string{eventDataFlipped, eventNoReadinessGate, eventReloadFailed, eventRolledBack,
	eventDownloadFailed, eventInsufficientSpace}

// downloadWarning is one node's failure to download one release.
type downloadWarning struct {
	node, channel, version string
	reason, message        string
}

// warnedDownloads remembers the download failures already told, per
// "node/channel/version", so that a failure is told once, not on every
// report that repeats it.
type warnedDownloads map[string]map[string]bool

// update returns the failures in the reports that were not told yet, and
// marks them told. A release's entries are kept while its node reports it
// not ready — failed, or pending or downloading for a retry — so a retry
// that fails the same way again is not told again; they are forgotten once
// the node has the release or no longer reports it. A space error is one
// failure whatever its numbers (free bytes change between retries); any
// other error is one per distinct message.
func (w warnedDownloads) update(nodes []release.NodeStatus) []downloadWarning {
	live := map[string]bool{}
	var out []downloadWarning
	for _, n := range nodes {
		for _, p := range n.Releases {
			if p.State == release.StateReady {
				continue
			}
			rel := n.Node + "/" + p.Channel + "/" + p.Version
			live[rel] = true
			if p.State != release.StateFailed || p.Error == "" {
				continue
			}
			d := warningOf(n.Node, p)
			key := d.reason
			if p.ErrorKind != release.ErrorKindNoSpace {
				key += "\n" + p.Error
			}
			if w[rel][key] {
				continue
			}
			if w[rel] == nil {
				w[rel] = map[string]bool{}
			}
			w[rel][key] = true
			out = append(out, d)
		}
	}
	for rel := range w {
		if !live[rel] {
			delete(w, rel)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.node+"/"+a.channel+"/"+a.version+"/"+a.message < b.node+"/"+b.channel+"/"+b.version+"/"+b.message
	})
	return out
}

// warningOf words a node's failed download as an Event. The node's error
// is free text a node controls, and kubectl prints Events as they are, so
// its control characters are escaped (release.EscapeControls).
func warningOf(node string, p release.Progress) downloadWarning {
	nodeErr := release.EscapeControls(p.Error)
	d := downloadWarning{node: node, channel: p.Channel, version: p.Version, reason: eventDownloadFailed,
		message: fmt.Sprintf("%s: node %s cannot download %s: %s", p.Channel, node, p.Version, nodeErr)}
	if p.ErrorKind == release.ErrorKindNoSpace {
		d.reason = eventInsufficientSpace
		d.message = fmt.Sprintf("%s: node %s has no room for %s: %s", p.Channel, node, p.Version, nodeErr)
	}
	return d
}
