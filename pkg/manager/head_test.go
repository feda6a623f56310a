package manager_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hydra-csi/hydra/internal/managertest"
	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/manager"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/store"
)

// onEachStore runs fn against a manager on bbolt and one on a real Consul
// agent: head moves are compare-and-swaps, and the two engines implement
// them differently.
func onEachStore(t *testing.T, fn func(t *testing.T, m *manager.Manager)) {
	clk := func() *clocktesting.FakeClock {
		return clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	t.Run("bbolt", func(t *testing.T) {
		fn(t, managertest.Start(t, managertest.Options{Clock: clk(), RetentionInterval: 1000 * time.Hour}).Manager)
	})
	t.Run("consul", func(t *testing.T) {
		agent := testenv.StartConsul(t)
		b, err := store.OpenConsul(context.Background(), agent.Addr, "head-test", "")
		if err != nil {
			t.Fatalf("OpenConsul: %v", err)
		}
		fn(t, managertest.Start(t, managertest.Options{Store: store.New(b), Clock: clk(), RetentionInterval: 1000 * time.Hour}).Manager)
	})
}

func TestHeadHistory(t *testing.T) {
	onEachStore(t, func(t *testing.T, m *manager.Manager) {
		ctx := manager.WithActor(context.Background(), "operator")
		mustCreate(t, m, "h", release.Config{})
		for _, v := range []string{"A", "B", "C"} {
			mustPublish(t, m, "h", v, true)
		}
		mustPublish(t, m, "h", "scratch", false)
		steps := []struct {
			name     string
			do       func() (release.Channel, error)
			wantHead string
			wantPin  string
		}{
			{"promote A", func() (release.Channel, error) { return m.SetHead(ctx, "h", "A") }, "A", ""},
			// Undoes the promote: back to C, never to B, which was
			// published just before A's successor but is not the last head.
			{"rollback undoes the promote", func() (release.Channel, error) { return m.Rollback(ctx, "h", "") }, "C", ""},
			{"rollback undoes publish C", func() (release.Channel, error) { return m.Rollback(ctx, "h", "") }, "B", ""},
			{"rollback --to forward", func() (release.Channel, error) { return m.Rollback(ctx, "h", "C") }, "C", ""},
			// The --to move is undone, not the scratch release taken.
			{"rollback after --to", func() (release.Channel, error) { return m.Rollback(ctx, "h", "") }, "B", ""},
			{"promote C", func() (release.Channel, error) { return m.SetHead(ctx, "h", "C") }, "C", ""},
			{"pin B", func() (release.Channel, error) { return m.Pin(ctx, "h", "B") }, "B", "B"},
			{"unpin returns to the head before the pin", func() (release.Channel, error) { return m.Unpin(ctx, "h") }, "C", ""},
		}
		for _, st := range steps {
			ch, err := st.do()
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if ch.Head != st.wantHead || ch.Pinned != st.wantPin {
				t.Fatalf("%s: head %q pin %q, want %q %q", st.name, ch.Head, ch.Pinned, st.wantHead, st.wantPin)
			}
		}
		moves, err := m.History(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, mv := range moves {
			got = append(got, fmt.Sprintf("%s %s>%s %s", mv.Cause, mv.From, mv.To, mv.By))
		}
		want := []string{
			"publish >A test", "publish A>B test", "publish B>C test",
			"promote C>A operator", "rollback A>C operator", "rollback C>B operator",
			"rollback B>C operator", "rollback C>B operator", "promote B>C operator",
			"pin C>B operator", "unpin B>C operator",
		}
		if !slices.Equal(got, want) {
			t.Fatalf("history:\n got %q\nwant %q", got, want)
		}
	})
}

func TestUnpinAfterPublishesWhilePinned(t *testing.T) {
	onEachStore(t, func(t *testing.T, m *manager.Manager) {
		ctx := context.Background()
		mustCreate(t, m, "p", release.Config{})
		mustPublish(t, m, "p", "v1", true)
		mustPublish(t, m, "p", "v2", true)
		if _, err := m.Pin(ctx, "p", "v1"); err != nil {
			t.Fatal(err)
		}
		mustPublish(t, m, "p", "v3", true)
		mustPublish(t, m, "p", "v4-scratch", false)
		ch, err := m.Unpin(ctx, "p")
		if err != nil || ch.Head != "v3" {
			t.Fatalf("unpin: head %q, %v; want v3 (promoted while pinned), never the --no-promote v4-scratch", ch.Head, err)
		}
	})
}

func TestHeadMovesRacingPublish(t *testing.T) {
	const tries = 20 // per race, three races: 60 per store
	races := []struct {
		name    string
		prepare func(t *testing.T, m *manager.Manager, ch string)
		move    func(m *manager.Manager, ch string) error
		// serial are the heads the two serial orders give.
		serial []string
	}{
		{"unpin", func(t *testing.T, m *manager.Manager, ch string) {
			mustPublish(t, m, ch, "v1", true)
			if _, err := m.Pin(context.Background(), ch, "v1"); err != nil {
				t.Fatal(err)
			}
		}, func(m *manager.Manager, ch string) error {
			_, err := m.Unpin(context.Background(), ch)
			return err
		}, []string{"v2"}},
		{"rollback", func(t *testing.T, m *manager.Manager, ch string) {
			mustPublish(t, m, ch, "v0", true)
			mustPublish(t, m, ch, "v1", true)
		}, func(m *manager.Manager, ch string) error {
			_, err := m.Rollback(context.Background(), ch, "")
			return err
		}, []string{"v2", "v1"}},
		{"pin", func(t *testing.T, m *manager.Manager, ch string) {
			mustPublish(t, m, ch, "v1", true)
		}, func(m *manager.Manager, ch string) error {
			_, err := m.Pin(context.Background(), ch, "v1")
			return err
		}, []string{"v1"}},
	}
	onEachStore(t, func(t *testing.T, m *manager.Manager) {
		var failed atomic.Int64
		for _, race := range races {
			for i := range tries {
				ch := fmt.Sprintf("%s-%d", race.name, i)
				mustCreate(t, m, ch, release.Config{})
				race.prepare(t, m, ch)
				errs := runTogether(
					func() error { return race.move(m, ch) },
					func() error {
						_, err := m.Publish(context.Background(), ch, "test", api.PublishRequest{
							Version: "v2", Datasets: []release.Dataset{dataset("index", "a.bin")}})
						return err
					})
				d, err := m.GetChannel(context.Background(), ch)
				if err != nil {
					t.Fatal(err)
				}
				wantPin := ""
				if race.name == "pin" {
					wantPin = "v1"
				}
				if err := errors.Join(errs...); err != nil || d.Channel.Pinned != wantPin || !slices.Contains(race.serial, d.Channel.Head) {
					failed.Add(1)
					t.Errorf("%s race %d: head %q pin %q, error %v; a serial order gives head %q, pin %q, no error",
						race.name, i, d.Channel.Head, d.Channel.Pinned, err, race.serial, wantPin)
				}
			}
		}
		t.Logf("%d of %d races ended outside every serial order", failed.Load(), len(races)*tries)
	})
}

// runTogether starts fns at the same moment and returns their errors.
func runTogether(fns ...func() error) []error {
	start := make(chan struct{})
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestPublishDatasetSetChange(t *testing.T) {
	onEachStore(t, func(t *testing.T, m *manager.Manager) {
		ctx := context.Background()
		mustCreate(t, m, "s", release.Config{})
		pub := func(version string, allow bool, names ...string) error {
			req := api.PublishRequest{Version: version, AllowDatasetChange: allow}
			for _, n := range names {
				req.Datasets = append(req.Datasets, dataset(n, "f.bin"))
			}
			_, err := m.Publish(ctx, "s", "test", req)
			return err
		}
		if err := pub("v1", false, "ann", "docs", "index"); err != nil {
			t.Fatal(err)
		}
		err := pub("v2", false, "ann", "extra")
		var fe *release.FieldError
		if !errors.As(err, &fe) || fe.Field != "datasets" {
			t.Fatalf("publish with another dataset set: %v, want a FieldError on datasets", err)
		}
		for _, want := range []string{"added: extra", "removed: docs, index", "head v1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
		if err := pub("v2", true, "ann", "extra"); err != nil {
			t.Fatalf("publish with allowDatasetChange: %v", err)
		}
		if d, _ := m.GetChannel(ctx, "s"); d.Channel.Head != "v2" {
			t.Errorf("head = %s, want v2", d.Channel.Head)
		}
	})
}
