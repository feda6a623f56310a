package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

func testChannels(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	created := newChannel(t, s, "search-index")
	newChannel(t, s, "alpha")
	_, err := s.CreateChannel(ctx, release.Channel{Name: "alpha", Config: release.Config{}.WithDefaults()})
	wantErr(t, "CreateChannel(duplicate)", err, store.ErrExists)
	_, err = s.CreateChannel(ctx, release.Channel{Name: "Bad_Name", Config: release.Config{}.WithDefaults()})
	wantErr(t, "CreateChannel(bad name)", err, release.ErrInvalid)
	_, err = s.GetChannel(ctx, "nope")
	wantErr(t, "GetChannel(missing)", err, store.ErrNotFound)

	got, err := s.GetChannel(ctx, "search-index")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, created) {
		t.Fatalf("GetChannel = %+v, want %+v", got, created)
	}
	list, err := s.ListChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "search-index" {
		t.Fatalf("ListChannels = %v, want alpha and search-index in order", list)
	}

	// Config updates go through UpdateChannel and are validated.
	updated, err := s.UpdateChannel(ctx, "alpha", func(ch *release.Channel) error {
		ch.Config.Keep = 3
		ch.Config.MaxAge = release.Duration{Duration: time.Hour}
		return nil
	})
	if err != nil || updated.Config.Keep != 3 || updated.Config.MaxAge.Duration != time.Hour {
		t.Fatalf("UpdateChannel = %+v, %v", updated.Config, err)
	}
	_, err = s.UpdateChannel(ctx, "alpha", func(ch *release.Channel) error { ch.Config.Keep = -1; return nil })
	wantErr(t, "UpdateChannel(keep=-1)", err, release.ErrInvalid)
	refuse := errors.New("refused by fn")
	_, err = s.UpdateChannel(ctx, "alpha", func(*release.Channel) error { return refuse })
	wantErr(t, "UpdateChannel(fn error)", err, refuse)
	_, err = s.UpdateChannel(ctx, "nope", func(*release.Channel) error { return nil })
	wantErr(t, "UpdateChannel(missing)", err, store.ErrNotFound)
}

func testHeadAndPin(t *testing.T, s *store.Store) {
	ctx := ctxT(t)
	newChannel(t, s, "hp")
	publish(t, s, sampleRelease("hp", "v1", 3), true)
	publish(t, s, sampleRelease("hp", "v2", 3), true)

	// Moving the head to an unknown release fails and changes nothing.
	_, err := s.UpdateChannel(ctx, "hp", func(ch *release.Channel) error { ch.Head = "v9"; return nil })
	wantErr(t, "head to missing release", err, store.ErrNotFound)
	if h := head(t, s, "hp"); h != "v2" {
		t.Fatalf("head = %s after failed move, want v2", h)
	}

	// Pin v1: head stays there, and a promoted publish does not move it.
	ch, err := s.UpdateChannel(ctx, "hp", func(ch *release.Channel) error { ch.Head, ch.Pinned = "v1", "v1"; return nil })
	if err != nil || ch.Head != "v1" || ch.Pinned != "v1" {
		t.Fatalf("pin: %+v, %v", ch, err)
	}
	_, promoted, err := s.Publish(ctx, sampleRelease("hp", "v3", 1), true)
	if err != nil || promoted {
		t.Fatalf("Publish while pinned: promoted=%t err=%v; want stored but not promoted", promoted, err)
	}
	if h := head(t, s, "hp"); h != "v1" {
		t.Fatalf("head = %s while pinned, want v1", h)
	}
	_, err = s.UpdateChannel(ctx, "hp", func(ch *release.Channel) error { ch.Pinned = "v8"; return nil })
	wantErr(t, "pin missing release", err, store.ErrNotFound)
}
