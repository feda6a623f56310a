package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/hydra-csi/hydra/pkg/client"
)

// registerTimeout bounds the wait, after the ramp, for every node to have
// reported once and received its desired state.
const registerTimeout = 2 * time.Minute

// fleet is the simulated nodes of one run.
type fleet struct {
	nodes     []*node
	byChannel map[string][]*node
	wg        sync.WaitGroup
}

// newClient is a client whose one transport keeps an idle connection for
// every long-poll and every other request a fleet has in flight, so that
// nothing is redialled between requests.
func newClient(url string, conns int) (*client.Client, *http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
	t.ResponseHeaderTimeout = 0 // long-polls answer late by design
	c, err := client.New(url, client.WithHTTPClient(&http.Client{Transport: t}))
	return c, t, err
}

// newFleet makes agents nodes, each serving perNode distinct channels
// drawn at random, each starting on the channels' initial releases.
func newFleet(cfg config, cl *client.Client, rec *recorder, channels []string, initial map[string]string, rng *rand.Rand, ready func()) *fleet {
	f := &fleet{byChannel: map[string][]*node{}}
	for i := range cfg.agents {
		var served []string
		for _, j := range rng.Perm(len(channels))[:cfg.perNode] {
			served = append(served, channels[j])
		}
		n := newNode(fmt.Sprintf("node-%04d", i), served, initial, cl, rec, cfg.downloadTime, ready)
		f.nodes = append(f.nodes, n)
		for _, ch := range served {
			f.byChannel[ch] = append(f.byChannel[ch], n)
		}
	}
	return f
}

// start runs the nodes, spread evenly over ramp, and waits until every
// one has registered and received its desired state.
func (f *fleet) start(ctx context.Context, ramp time.Duration, registered <-chan struct{}) error {
	step := ramp / time.Duration(len(f.nodes))
	for _, n := range f.nodes {
		f.wg.Go(func() { n.run(ctx) })
		sleep(ctx, step)
	}
	timeout := time.After(registerTimeout)
	for i := range f.nodes {
		select {
		case <-registered:
		case <-timeout:
			return fmt.Errorf("only %d of %d nodes registered within %v of the ramp's end", i, len(f.nodes), registerTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// wait waits for every node to stop (after ctx ends).
func (f *fleet) wait() { f.wg.Wait() }

// fanout is the join of the publishes and the nodes' sightings: one
// sample per (publish, node serving its channel).
type fanout struct {
	// Samples are the time from each publish's response to each serving
	// node's long-poll answer with the new head; an answer that beat the
	// publish's response counts as 0 (and as Early).
	Samples []timedSample
	Early   int
	// Superseded: the node never saw the version as head because a newer
	// one of the same channel reached it first. Not a delay, not a loss.
	Superseded int
	// Unseen: neither it nor a newer version reached the node by the end.
	Unseen int
}

// timedSample is one fan-out latency and the publish it belongs to.
type timedSample struct {
	at time.Time // the publish's response
	d  time.Duration
}

// fanout computes the fan-out of pubs.
func (f *fleet) fanout(pubs []publication) fanout {
	var out fanout
	for _, p := range pubs {
		for _, n := range f.byChannel[p.Channel] {
			seen, ok := n.sighting(p.Channel, p.Version)
			switch {
			case ok:
				d := seen.Sub(p.Done)
				if d < 0 {
					out.Early++
					d = 0
				}
				out.Samples = append(out.Samples, timedSample{p.Done, d})
			case n.sawLater(p.Channel, p.Version):
				out.Superseded++
			default:
				out.Unseen++
			}
		}
	}
	return out
}

// drain waits until every publish reached every serving node (or a newer
// one did) or until limit passes; it returns how long it waited.
func (f *fleet) drain(ctx context.Context, pubs []publication, limit time.Duration) time.Duration {
	start := time.Now()
	deadline := start.Add(limit)
	for f.fanout(pubs).Unseen > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		sleep(ctx, 250*time.Millisecond)
	}
	return time.Since(start)
}
