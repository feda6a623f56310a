package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// The agent's timings (pkg/agent's defaults).
const (
	pollWait       = 60 * time.Second // the long-poll's wait
	reportInterval = 2 * time.Second  // reports while anything changes
	idleReport     = time.Minute      // reports when nothing does
	nodeDownloads  = 2                // releases downloading at once
)

// node is one simulated node agent. It makes the calls pkg/agent makes, in
// the same loops, with the same report shape; only the bytes are missing:
// a "download" fetches the manifest and then takes downloadTime.
type node struct {
	name     string
	channels []string // served, one view each
	cl       *client.Client
	rec      *recorder
	download time.Duration

	mu       sync.Mutex
	desired  release.Desired
	have     bool
	views    map[string]*release.View                // by channel
	releases map[string]map[string]*release.Progress // channel → version → ready or downloading
	started  map[string]time.Time                    // "channel/version" → download start
	heads    map[string]string                       // last head seen per served channel
	seen     map[string]map[string]time.Time         // channel → version → first long-poll answer with it as head
	wake     chan struct{}
	sem      chan struct{}
	ready    func() // called once: first report stored and first desired state received
	regDone  bool
	pollDone bool
}

// sighting: when the node first saw a version as its channel's head.
func (n *node) sighting(channel, version string) (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.seen[channel][version]
	return t, ok
}

// sawLater reports whether the node saw a head of channel newer than
// version: versions are numbered in publish order.
func (n *node) sawLater(channel, version string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for v := range n.seen[channel] {
		if v > version {
			return true
		}
	}
	return false
}

// newNode is a node that has served initial[ch] on every channel for a
// while: the release is stored and its view points at it.
func newNode(name string, channels []string, initial map[string]string, cl *client.Client, rec *recorder, download time.Duration, ready func()) *node {
	n := &node{name: name, channels: channels, cl: cl, rec: rec, download: download, ready: ready,
		views: map[string]*release.View{}, releases: map[string]map[string]*release.Progress{},
		started: map[string]time.Time{}, heads: map[string]string{}, seen: map[string]map[string]time.Time{},
		wake: make(chan struct{}, 1), sem: make(chan struct{}, nodeDownloads)}
	now := time.Now().UTC()
	for i, ch := range channels {
		v := initial[ch]
		n.views[ch] = &release.View{
			VolumeID: fmt.Sprintf("pvc-%s-%d", name, i), PodUID: fmt.Sprintf("uid-%s-%d", name, i),
			PodName: fmt.Sprintf("app-%s-%s", ch, name), PodNamespace: "load", Channel: ch, Current: v, Medium: "disk",
		}
		n.releases[ch] = map[string]*release.Progress{v: {Channel: ch, Version: v, State: release.StateReady,
			BytesDone: releaseBytes, BytesTotal: releaseBytes, UpdatedAt: now}}
		n.heads[ch] = v
		n.seen[ch] = map[string]time.Time{}
	}
	return n
}

// run polls, reconciles and reports until ctx ends, as pkg/agent does.
func (n *node) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { n.pollLoop(ctx) })
	wg.Go(func() { n.reconcileLoop(ctx) })
	wg.Go(func() { n.reportLoop(ctx) })
	wg.Wait()
}

func (n *node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// pollLoop long-polls the desired state and notes, per served channel,
// when each new head first arrives.
func (n *node) pollLoop(ctx context.Context) {
	var index uint64
	backoff := time.Second
	for ctx.Err() == nil {
		d, err := n.cl.Desired(ctx, n.name, index, pollWait)
		at := time.Now()
		if err != nil {
			n.rec.fail(ctx, kindLongPoll, err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		if d.Index == index {
			continue // the wait passed without a change
		}
		index = d.Index
		n.rec.answered()
		n.observe(d, at)
		n.poke()
	}
}

func (n *node) observe(d release.Desired, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.desired, n.have = d, true
	for _, ch := range d.Channels {
		if last, serves := n.heads[ch.Name]; serves && ch.Head != "" && ch.Head != last {
			n.heads[ch.Name] = ch.Head
			if _, dup := n.seen[ch.Name][ch.Head]; !dup {
				n.seen[ch.Name][ch.Head] = at
			}
		}
	}
	if !n.pollDone {
		n.pollDone = true
		n.maybeReady()
	}
}

// maybeReady signals once both the first report and the first desired
// state went through. Called with n.mu held.
func (n *node) maybeReady() {
	if n.pollDone && n.regDone && n.ready != nil {
		n.ready()
		n.ready = nil
	}
}

// reconcileLoop acts on every new desired state and finished download.
func (n *node) reconcileLoop(ctx context.Context) {
	for {
		n.reconcile(ctx)
		select {
		case <-n.wake:
		case <-ctx.Done():
			return
		}
	}
}

// reconcile is pkg/agent's pass: download each served channel's head,
// apply the flips asked for whose release is here, and keep per channel
// the nodeKeep newest releases plus whatever is in use.
func (n *node) reconcile(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.have {
		return
	}
	for _, ch := range n.desired.Channels {
		if _, serves := n.views[ch.Name]; serves && ch.Head != "" {
			// A failed download is retried on every pass, as the agent does.
			if p, have := n.releases[ch.Name][ch.Head]; !have || p.State == release.StateFailed {
				n.startDownload(ctx, ch.Name, ch.Head)
			}
		}
	}
	for _, dv := range n.desired.Views {
		v := n.views[dv.Channel]
		if v == nil || v.VolumeID != dv.VolumeID || v.Current == dv.Version || !n.isReady(dv.Channel, dv.Version) {
			continue
		}
		v.Current = dv.Version
	}
	for _, ch := range n.desired.Channels {
		if _, serves := n.views[ch.Name]; serves {
			n.collect(ch)
		}
	}
}

func (n *node) isReady(channel, version string) bool {
	p := n.releases[channel][version]
	return p != nil && p.State == release.StateReady
}

// collect drops ready releases beyond the channel's nodeKeep newest that
// are neither its head nor its view's, and failures of past heads.
// Called with n.mu held.
func (n *node) collect(ch release.DesiredChannel) {
	var ready []string
	for v, p := range n.releases[ch.Name] {
		switch {
		case p.State == release.StateReady:
			ready = append(ready, v)
		case p.State == release.StateFailed && v != ch.Head:
			delete(n.releases[ch.Name], v)
		}
	}
	slices.Sort(ready)
	keep := max(ch.NodeKeep, 1)
	for i, v := range ready {
		if i < len(ready)-keep && v != ch.Head && v != ch.Pinned && v != n.views[ch.Name].Current {
			delete(n.releases[ch.Name], v)
		}
	}
}

// startDownload fetches the manifest, then "downloads" for n.download,
// at most nodeDownloads at a time. Called with n.mu held.
func (n *node) startDownload(ctx context.Context, channel, version string) {
	p := &release.Progress{Channel: channel, Version: version, State: release.StatePending, UpdatedAt: time.Now().UTC()}
	n.releases[channel][version] = p // replaces a failed attempt
	go func() {
		select {
		case n.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-n.sem }()
		var rel release.Release
		err := n.rec.time(ctx, kindManifest, func() (err error) {
			rel, err = n.cl.GetManifest(ctx, channel, version)
			return err
		})
		n.mu.Lock()
		if err != nil {
			// As the agent does: report it failed; the next head retries.
			p.State, p.Error, p.UpdatedAt = release.StateFailed, err.Error(), time.Now().UTC()
			n.mu.Unlock()
			return
		}
		for _, ds := range rel.Datasets {
			p.BytesTotal += ds.Manifest.TotalSize()
		}
		p.State, p.UpdatedAt = release.StateDownloading, time.Now().UTC()
		n.started[channel+"/"+version] = time.Now()
		n.mu.Unlock()
		sleep(ctx, n.download)
		n.mu.Lock()
		p.State, p.BytesDone, p.UpdatedAt = release.StateReady, p.BytesTotal, time.Now().UTC()
		delete(n.started, channel+"/"+version)
		n.mu.Unlock()
		n.poke()
	}()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
