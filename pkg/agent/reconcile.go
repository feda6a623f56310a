package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// reconcileLoop acts on the desired state whenever it changes, a view is
// added, or a download ends, and at least every IdleReport.
func (a *Agent) reconcileLoop(ctx context.Context) {
	sem := make(chan struct{}, a.opts.Downloads)
	var inflight sync.Map // "channel/version" → struct{}
	ticker := time.NewTicker(a.opts.IdleReport)
	defer ticker.Stop()
	for {
		if err := a.reconcile(ctx, sem, &inflight); err != nil && ctx.Err() == nil {
			a.log().Error(err, "reconcile")
		}
		select {
		case <-a.wake:
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

// reconcile is one pass:
//  1. every channel some view on the node uses, or the node is warm for,
//     gets its head (and the views' pins) downloaded in the background,
//     a warm one on its medium;
//  2. flips the manager asks for are applied to views whose target is here;
//  3. releases beyond nodeKeep that no view uses are removed; the RAM tier
//     keeps only what memory views use and are moving to;
//  4. every wanted release on disk gets a spare view tree, and the spares
//     of removed releases go;
//  5. the space of deleted channels and abandoned partial downloads comes
//     back (space.go).
func (a *Agent) reconcile(ctx context.Context, sem chan struct{}, inflight *sync.Map) error {
	views, err := a.opts.Views.List()
	if err != nil {
		return err
	}
	memViews, err := a.memoryViews()
	if err != nil {
		return err
	}
	d, ok := a.Desired()
	all := append(views, memViews...)
	wanted := withWarm(wantedReleases(all, d), d, "")
	memWanted := wantedReleases(memViews, d)
	if a.opts.Memory != nil {
		memWanted = withWarm(memWanted, d, release.MediumMemory)
	} else {
		a.noRAMForWarm(d)
	}
	for _, w := range wanted { // (1)
		inRAM := contains(memWanted, w)
		missing := !a.opts.Cache.StoredAs(w.channel, w.version, w.id) || (inRAM && !a.opts.Memory.StoredAs(w.channel, w.version, w.id))
		if missing && a.retryDue(w) {
			a.startDownload(ctx, w, inRAM, a.downloadCredentials(w.channel, all), sem, inflight)
		}
	}
	if !ok {
		return nil // nothing from the manager yet: keep what is there
	}
	a.forgetFailures(wanted)
	a.applyFlips(ctx, release.MediumDisk, views, d) // (2)
	if a.opts.Memory != nil {
		a.applyFlips(ctx, release.MediumMemory, memViews, d)
	}
	if err := a.collect(d, wanted); err != nil { // (3)
		return err
	}
	if err := a.collectMemory(memViews, memWanted); err != nil {
		return err
	}
	if err := a.spares(wanted); err != nil { // (4)
		return err
	}
	return a.space(ctx, d, all) // (5)
}

// spares keeps a spare view tree of every wanted release in the disk store,
// so that the next pod start or flip to it is one rename
// (cache.Views.EnableSpares; a no-op without).
func (a *Agent) spares(wanted []want) error {
	if err := a.opts.Views.PruneSpares(); err != nil {
		return err
	}
	for _, w := range wanted {
		if a.opts.Cache.StoredAs(w.channel, w.version, w.id) {
			a.opts.Views.PrepareSpare(w.channel, w.version)
		}
	}
	return nil
}

func (a *Agent) memoryViews() ([]cache.ViewInfo, error) {
	if a.opts.Memory == nil || a.opts.MemoryViews == nil {
		return nil, nil
	}
	return a.opts.MemoryViews.List()
}

func contains(ws []want, w want) bool {
	for _, x := range ws {
		if x.channel == w.channel && x.version == w.version {
			return true
		}
	}
	return false
}

// want is a release the node must hold: its name and, when the manager
// sent it, which publish of the name (release.Identity; zero: any).
type want struct {
	channel, version string
	id               release.Identity
}

// wantedReleases lists what the node must hold: for every channel a view
// uses, its head; and every view's pin. A name the desired state gives an
// identity for is wanted as that publish.
func wantedReleases(views []cache.ViewInfo, d release.Desired) []want {
	used := map[string]bool{}
	ids := identitiesOf(d)
	seen := map[[2]string]bool{}
	var out []want
	add := func(channel, version string) {
		k := [2]string{channel, version}
		if version != "" && !seen[k] {
			seen[k] = true
			out = append(out, want{channel, version, ids[k]})
		}
	}
	for _, v := range views {
		used[v.Channel] = true
		add(v.Channel, v.Pinned)
	}
	for _, ch := range d.Channels {
		if used[ch.Name] {
			add(ch.Name, ch.Head)
		}
	}
	for _, dv := range d.Views {
		if used[dv.Channel] {
			add(dv.Channel, dv.Version)
		}
	}
	return out
}

// withWarm adds to ws the heads of the channels the node is warm for
// (DesiredChannel.Warm): on medium, or on any medium when medium is "".
// A warm head is wanted like the head of a channel a view uses: fetched at
// once, kept by retention, and fetched anew when the head moves.
func withWarm(ws []want, d release.Desired, medium string) []want {
	for _, ch := range d.Channels {
		if ch.Warm == "" || ch.Head == "" || (medium != "" && ch.Warm != medium) {
			continue
		}
		w := want{ch.Name, ch.Head, ch.HeadIdentity}
		if !contains(ws, w) {
			ws = append(ws, w)
		}
	}
	return ws
}

// noRAMForWarm logs, once per channel, that a channel warm in memory is
// kept on disk: the node has no RAM tier (--memory-size).
func (a *Agent) noRAMForWarm(d release.Desired) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ch := range d.Channels {
		if ch.Warm == release.MediumMemory && !a.warnedNoRAM[ch.Name] {
			a.warnedNoRAM[ch.Name] = true
			a.log().Info("channel is warm in memory but the node has no RAM tier; keeping its head on disk", "channel", ch.Name)
		}
	}
}

// downloadCredentials picks the credentials of a background download of
// a channel's release: the node's when a view of the channel reads with
// them, else the first known ones of a view of the channel, so that a
// channel that only volumes' credentials can read still gets its next
// release before the rollout flips. Whoever downloads, each view is
// checked with its own credentials before it flips (applyFlips).
func (a *Agent) downloadCredentials(channel string, views []cache.ViewInfo) *source.Credentials {
	var first *source.Credentials
	for _, v := range views {
		if v.Channel != channel {
			continue
		}
		creds, known := a.opts.Keyring.Get(v.Credentials)
		switch {
		case !known:
		case creds == nil:
			return nil
		case first == nil:
			first = creds
		}
	}
	return first
}

// startDownload fetches a release's manifest and downloads it, once.
func (a *Agent) startDownload(ctx context.Context, w want, memory bool, creds *source.Credentials, sem chan struct{}, inflight *sync.Map) {
	key := w.channel + "/" + w.version
	if _, busy := inflight.LoadOrStore(key, struct{}{}); busy {
		return
	}
	go func() {
		defer inflight.Delete(key)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		err := a.ensure(ctx, release.MediumDisk, w.channel, w.version, creds)
		if err == nil && memory {
			err = a.ensure(ctx, release.MediumMemory, w.channel, w.version, creds)
		}
		a.recordResult(w, err)
		a.Poke()
	}()
}

// Ensure makes a release present on the node and readable with creds
// (nil: the node's own): its manifest from the manager, its bytes through
// the cache (one download however many callers; cache.Tiers.Ensure).
func (a *Agent) Ensure(ctx context.Context, channel, version string, creds *source.Credentials) error {
	return a.ensure(ctx, release.MediumDisk, channel, version, creds)
}

// EnsureMemory makes a release present in the RAM tier (and on disk),
// readable with creds.
func (a *Agent) EnsureMemory(ctx context.Context, channel, version string, creds *source.Credentials) error {
	return a.ensure(ctx, release.MediumMemory, channel, version, creds)
}

// ensure is Ensure of a medium, after giving the manager a moment to name
// peers for a release the node is about to download (awaitPeers).
func (a *Agent) ensure(ctx context.Context, medium, channel, version string, creds *source.Credentials) error {
	if !a.opts.Cache.Stored(channel, version) {
		a.awaitPeers(ctx, channel, version)
	}
	return a.tiers.Ensure(ctx, medium, channel, version, creds, a.manifest)
}

// manifest asks the manager for a release's manifest (a cache.ManifestFunc).
func (a *Agent) manifest(ctx context.Context, channel, version string) (release.Release, error) {
	rel, err := a.opts.Client.GetManifest(ctx, channel, version)
	if err != nil {
		return rel, fmt.Errorf("agent: manifest of %s/%s: %w", channel, version, err)
	}
	return rel, nil
}

func (a *Agent) recordResult(w want, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := w.channel + "/" + w.version
	if err == nil {
		delete(a.failed, key)
		delete(a.retries, key)
		return
	}
	a.backOff(key)
	a.metrics.errors.WithLabelValues("download").Inc()
	a.failed[key] = release.Progress{Channel: w.channel, Version: w.version, State: release.StateFailed,
		Error: err.Error(), ErrorKind: errorKind(err), UpdatedAt: time.Now().UTC()}
}

// errorKind sorts a download's failure for the manager, which turns a
// space error into an InsufficientSpace Event rather than DownloadFailed.
func errorKind(err error) release.ErrorKind {
	if errors.Is(err, cache.ErrNoSpace) || errors.Is(err, syscall.ENOSPC) {
		return release.ErrorKindNoSpace
	}
	return release.ErrorKindOther
}

// forgetFailures drops the failures of releases the node no longer wants
// (the head moved on, a pin went away): a report carries no stale errors.
func (a *Agent) forgetFailures(wanted []want) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, p := range a.failed {
		if !contains(wanted, want{channel: p.Channel, version: p.Version}) {
			delete(a.failed, key)
			delete(a.retries, key)
		}
	}
}

// applyFlips points views of the medium's tier at the releases the
// manager asks for, once the release is stored in that tier and the view's
// credentials are proved to read it; pinned views are never flipped.
func (a *Agent) applyFlips(ctx context.Context, medium string, views []cache.ViewInfo, d release.Desired) {
	byKey := map[string]cache.ViewInfo{}
	for _, v := range views {
		byKey[v.VolumeID+"/"+v.PodUID] = v
	}
	for _, dv := range d.Views {
		v, ok := byKey[dv.VolumeID+"/"+dv.PodUID]
		if !ok || v.Pinned != "" || v.Current == dv.Version || !a.tiers.StoredAs(medium, v.Channel, dv.Version, dv.ReleaseIdentity) {
			continue
		}
		if err := a.authorize(ctx, v, dv.Version); err != nil {
			a.metrics.errors.WithLabelValues("access").Inc()
			a.log().Error(err, "not flipping: the view's credentials cannot be shown to read the release",
				"volumeID", v.VolumeID, "pod", v.PodUID, "release", dv.Version, "current", v.Current)
			continue
		}
		if _, err := a.tiers.Flip(medium, v, dv.Version); err != nil {
			a.log().Error(err, "flip", "volumeID", v.VolumeID, "pod", v.PodUID, "release", dv.Version)
			continue
		}
		a.metrics.flips.Inc()
	}
}

// authorize proves that the credentials of a view's volume read a release
// before the view shows it. Credentials live in memory only: after a
// restart, a view whose volume brought its own waits on its release until
// a NodeStage or NodePublish brings them again.
func (a *Agent) authorize(ctx context.Context, v cache.ViewInfo, version string) error {
	creds, known := a.opts.Keyring.Get(v.Credentials)
	if !known {
		return fmt.Errorf("agent: view %s/%s: its volume's S3 credentials %s are not known to this process (it restarted since they came)",
			v.VolumeID, v.PodUID, v.Credentials)
	}
	// The manifest is the disk store's: a release whose disk copy is gone
	// waits (nil: no manager fallback), as it always has here.
	return a.tiers.Authorize(ctx, v.Channel, version, creds, nil)
}

// collectMemory keeps in RAM, per channel, only what memory views use and
// what they are wanted to move to (the head being rolled to).
func (a *Agent) collectMemory(views []cache.ViewInfo, wanted []want) error {
	if a.opts.Memory == nil {
		return nil
	}
	keep := map[string]map[string]bool{}
	mark := func(ch, v string) {
		if keep[ch] == nil {
			keep[ch] = map[string]bool{}
		}
		keep[ch][v] = true
	}
	for _, v := range views {
		mark(v.Channel, v.Current)
	}
	for _, w := range wanted {
		mark(w.channel, w.version)
	}
	for ch, versions := range keep {
		if _, err := a.opts.Memory.Retain(ch, versions); err != nil {
			return err
		}
	}
	return nil
}

// collect applies node retention: per channel keep nodeKeep releases plus
// anything wanted or used by a view.
func (a *Agent) collect(d release.Desired, wanted []want) error {
	inUse, err := a.opts.Views.InUse()
	if err != nil {
		return err
	}
	for _, ch := range d.Channels {
		protect := map[string]bool{ch.Head: true, ch.Pinned: true}
		for v := range inUse[ch.Name] {
			protect[v] = true
		}
		for _, w := range wanted {
			if w.channel == ch.Name {
				protect[w.version] = true
			}
		}
		removed, err := a.opts.Cache.Retain(ch.Name, max(ch.NodeKeep, 1), protect)
		for _, v := range removed {
			a.log().V(2).Info("removed release from node", "channel", ch.Name, "release", v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
