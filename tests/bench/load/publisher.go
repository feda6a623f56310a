package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

const (
	// filesPerRelease and fileSize shape every release: one dataset of
	// ten 1 GiB shards, as a search index might be published.
	filesPerRelease = 10
	fileSize        = 1 << 30
	releaseBytes    = filesPerRelease * fileSize
	// maxPublishing bounds publishes in flight; beyond it the publisher
	// falls behind its schedule, which the achieved rate shows.
	maxPublishing = 64
)

// publication is one successful publish.
type publication struct {
	Channel, Version string
	Sent, Done       time.Time // request sent, response received
}

// publisher publishes releases to random channels at Poisson times: the
// publishes of many independent pipelines.
type publisher struct {
	cl       *client.Client
	rec      *recorder
	channels []string
	locks    []sync.Mutex // one publish per channel at a time, so heads only move forward
	seq      atomic.Uint64

	mu   sync.Mutex
	pubs []publication
}

func newPublisher(cl *client.Client, rec *recorder, channels int) *publisher {
	p := &publisher{cl: cl, rec: rec, locks: make([]sync.Mutex, channels)}
	for i := range channels {
		p.channels = append(p.channels, fmt.Sprintf("load-%03d", i))
	}
	return p
}

// setup creates the channels with default settings and publishes a first
// release to each; it returns those versions by channel.
func (p *publisher) setup(ctx context.Context) (map[string]string, error) {
	initial := map[string]string{}
	for _, ch := range p.channels {
		if _, err := p.cl.CreateChannel(ctx, ch, release.Config{}); err != nil {
			return nil, fmt.Errorf("create channel %s: %w", ch, err)
		}
		v := p.nextVersion()
		if _, err := p.cl.Publish(ctx, ch, publishRequest(ch, v)); err != nil {
			return nil, fmt.Errorf("publish %s@%s: %w", ch, v, err)
		}
		initial[ch] = v
	}
	return initial, nil
}

// nextVersion numbers releases across channels in publish order; the
// fixed width makes string order the publish order.
func (p *publisher) nextVersion() string { return fmt.Sprintf("r%07d", p.seq.Add(1)) }

func publishRequest(channel, version string) api.PublishRequest {
	files := make([]release.File, filesPerRelease)
	for i := range files {
		files[i] = release.File{Path: fmt.Sprintf("shard-%02d.idx", i), Size: fileSize,
			ETag: fmt.Sprintf(`"%032x"`, i)}
	}
	return api.PublishRequest{Version: version, Datasets: []release.Dataset{{
		Name: "index", Source: "s3://load-bench/" + channel + "/" + version + "/", Manifest: release.Manifest{Files: files},
	}}}
}

// run publishes at rate per second on average until ctx ends or for
// duration, then waits for the publishes in flight.
func (p *publisher) run(ctx context.Context, duration time.Duration, rate float64, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	sem := make(chan struct{}, maxPublishing)
	var wg sync.WaitGroup
	defer wg.Wait()
	next := time.Now()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
		sleep(ctx, time.Until(next))
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			return
		}
		i := rng.IntN(len(p.channels))
		wg.Go(func() {
			defer func() { <-sem }()
			// Not ctx: a publish under way when the time is up finishes.
			p.publishOne(context.WithoutCancel(ctx), i)
		})
	}
}

func (p *publisher) publishOne(ctx context.Context, i int) {
	p.locks[i].Lock()
	defer p.locks[i].Unlock()
	ch, v := p.channels[i], p.nextVersion()
	sent := time.Now()
	err := p.rec.time(ctx, kindPublish, func() error {
		_, err := p.cl.Publish(ctx, ch, publishRequest(ch, v))
		return err
	})
	if err == nil {
		p.mu.Lock()
		p.pubs = append(p.pubs, publication{Channel: ch, Version: v, Sent: sent, Done: time.Now()})
		p.mu.Unlock()
	}
}

// publications returns the successful publishes so far.
func (p *publisher) publications() []publication {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]publication(nil), p.pubs...)
}

// readStatus reads a random channel's status every interval until ctx
// ends, as an operator's `hydra status` or a dashboard would.
func (p *publisher) readStatus(ctx context.Context, interval time.Duration, rng *rand.Rand) {
	if interval <= 0 {
		return
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
		ch := p.channels[rng.IntN(len(p.channels))]
		_ = p.rec.time(ctx, kindStatus, func() error { // counted by the recorder
			_, err := p.cl.ChannelStatus(ctx, ch)
			return err
		})
	}
}
