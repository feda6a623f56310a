// Package storetest is the conformance suite every store backend passes.
// The bbolt and Consul tests call Run with their own harness, so the two
// engines are held to the same behaviour by the same assertions.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// Harness opens stores on one engine.
type Harness struct {
	// Open returns a store on fresh, empty state.
	Open func(t *testing.T) *store.Store
	// Reopen closes s and opens the same state again, as a manager
	// restart would.
	Reopen func(t *testing.T, s *store.Store) *store.Store
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Run("Backend", func(t *testing.T) { runBackend(t, h) })
	t.Run("Channels", func(t *testing.T) { testChannels(t, h.Open(t)) })
	t.Run("Publish", func(t *testing.T) { testPublish(t, h.Open(t)) })
	t.Run("LargeManifest", func(t *testing.T) { testLargeManifest(t, h.Open(t)) })
	t.Run("HeadAndPin", func(t *testing.T) { testHeadAndPin(t, h.Open(t)) })
	t.Run("DeleteRelease", func(t *testing.T) { testDeleteRelease(t, h.Open(t)) })
	t.Run("DeleteChannel", func(t *testing.T) { testDeleteChannel(t, h.Open(t)) })
	t.Run("ConcurrentPublishers", func(t *testing.T) { testConcurrentPublishers(t, h.Open(t)) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, h.Open(t)) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, h.Open(t)) })
	t.Run("Nodes", func(t *testing.T) { testNodes(t, h.Open(t)) })
	t.Run("ConcurrentReports", func(t *testing.T) { testConcurrentReports(t, h.Open(t)) })
	t.Run("Rollouts", func(t *testing.T) { testRollouts(t, h.Open(t)) })
	t.Run("Restart", func(t *testing.T) { testRestart(t, h) })
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newChannel creates a channel with defaults.
func newChannel(t *testing.T, s *store.Store, name string) release.Channel {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	ch, err := s.CreateChannel(ctxT(t), release.Channel{Name: name, Config: release.Config{}.WithDefaults(), CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatalf("CreateChannel(%s): %v", name, err)
	}
	return ch
}

// sampleRelease builds a small valid release with n files.
func sampleRelease(channel, version string, n int) release.Release {
	files := make([]release.File, n)
	for i := range files {
		files[i] = release.File{Path: fmt.Sprintf("dir-%d/file-%05d.bin", i%7, i), Size: int64(i * 10), ETag: fmt.Sprintf("\"etag-%d\"", i)}
	}
	return release.Release{
		Channel:   channel,
		Version:   version,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Datasets: []release.Dataset{
			{Name: "index", Source: "s3://bucket/index/" + version + "/", Manifest: release.Manifest{Files: files}},
			{Name: "config", Source: "file:///srv/config/", Manifest: release.Manifest{Files: []release.File{{Path: "settings.json", Size: 2}}}},
		},
	}
}

func publish(t *testing.T, s *store.Store, rel release.Release, promote bool) release.Release {
	t.Helper()
	out, _, err := s.Publish(ctxT(t), rel, promote)
	if err != nil {
		t.Fatalf("Publish(%s/%s): %v", rel.Channel, rel.Version, err)
	}
	return out
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func head(t *testing.T, s *store.Store, channel string) string {
	t.Helper()
	ch, err := s.GetChannel(ctxT(t), channel)
	if err != nil {
		t.Fatalf("GetChannel(%s): %v", channel, err)
	}
	return ch.Head
}
