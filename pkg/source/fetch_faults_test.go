package source_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/internal/testenv"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestS3ReadRangeFaults reads many ranges at once through a proxy that
// fails a good share of the requests: every range must come back exactly
// right or as an error, never as wrong bytes, and broken bodies must be
// resumed rather than restarted.
func TestS3ReadRangeFaults(t *testing.T) {
	e := startFetchEnv(t)
	big := e.objects["big.bin"]
	size := int64(len(big))
	ranges := [][2]int64{ // off, n
		{0, size}, {0, 1 << 20}, {1 << 20, 1 << 20}, {2 << 20, size - 2<<20},
		{12345, 777777}, {256 << 10, 256 << 10}, {size - 1, 1}, {size - 300000, 300000},
		{3, 1}, {100000, 2 << 20}, {1<<20 - 1, 2}, {500000, 1234567},
	}
	const slow = time.Millisecond
	tests := []struct {
		name   string
		faults testenv.Faults
	}{
		{"errors", testenv.Faults{ErrorRate: 0.4, Seed: 1}},
		{"resets", testenv.Faults{ResetRate: 0.4, Seed: 2}},
		{"truncations", testenv.Faults{TruncateRate: 0.4, Seed: 3}},
		{"slow bodies", testenv.Faults{SlowRate: 0.5, SlowDelay: slow, Seed: 4}},
		{"everything", testenv.Faults{ErrorRate: 0.15, ResetRate: 0.15, TruncateRate: 0.15, SlowRate: 0.15, SlowDelay: slow, Seed: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, proxy := e.reader(t, source.FetchOptions{Requests: 4})
			proxy.SetFaults(tt.faults)
			errs := make([]error, len(ranges))
			writers := make([]*rangeWriter, len(ranges))
			var wg sync.WaitGroup
			for i, rg := range ranges {
				writers[i] = newRangeWriter(rg[1])
				wg.Go(func() {
					errs[i] = r.ReadRange(t.Context(), e.src, e.file("big.bin"), rg[0], rg[1], writers[i])
				})
			}
			wg.Wait()
			ok := 0
			for i, rg := range ranges {
				want := big[rg[0] : rg[0]+rg[1]]
				if errs[i] != nil {
					// Possible (0.4⁸ per range), and then it must say so.
					t.Logf("range %v failed: %v", rg, errs[i])
					wantError(t, errs[i], []string{"s3://data/ds/big.bin", "attempts"})
					writers[i].checkPrefix(t, want)
					continue
				}
				ok++
				writers[i].checkComplete(t, want)
			}
			if ok < len(ranges)/2 {
				t.Errorf("%d of %d ranges succeeded; want most at these rates", ok, len(ranges))
			}
			if proxy.Injected() == 0 {
				t.Errorf("no fault was injected")
			}
			if tt.faults.SlowRate < 1 && tt.faults.ErrorRate+tt.faults.ResetRate+tt.faults.TruncateRate > 0 &&
				proxy.Requests() <= int64(len(ranges)) {
				t.Errorf("%d requests for %d ranges: no retry happened", proxy.Requests(), len(ranges))
			}
		})
	}
}

// TestS3ReadRangeGivesUp checks the error once every attempt failed.
func TestS3ReadRangeGivesUp(t *testing.T) {
	e := startFetchEnv(t)
	big := e.objects["big.bin"]
	tests := []struct {
		name   string
		faults testenv.Faults
		opts   source.FetchOptions
		want   []string
	}{
		{"resets", testenv.Faults{ResetRate: 1}, source.FetchOptions{MaxAttempts: 3},
			[]string{"s3://data/ds/big.bin", "bytes 1000-1049575", "after 3 attempts"}},
		{"errors", testenv.Faults{ErrorRate: 1}, source.FetchOptions{MaxAttempts: 3},
			[]string{"s3://data/ds/big.bin", "bytes 1000-1049575", "after 3 attempts", "50"}},
		// The proxy holds back the response: the stall timer must end each
		// attempt, or this test would wait for the proxy's hour.
		{"stalls", testenv.Faults{SlowRate: 1, SlowDelay: time.Hour}, source.FetchOptions{MaxAttempts: 2, StallTimeout: 100 * time.Millisecond},
			[]string{"s3://data/ds/big.bin", "after 2 attempts", "no data for 100ms: stalled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, proxy := e.reader(t, tt.opts)
			proxy.SetFaults(tt.faults)
			w := newRangeWriter(1 << 20)
			err := r.ReadRange(t.Context(), e.src, e.file("big.bin"), 1000, 1<<20, w)
			wantError(t, err, tt.want)
			if errors.Is(err, source.ErrChanged) || errors.Is(err, source.ErrMissing) {
				t.Errorf("err = %v: a passing failure reported as a changed or missing object", err)
			}
			if got := proxy.Requests(); got != int64(tt.opts.MaxAttempts) {
				t.Errorf("%d requests, want %d", got, tt.opts.MaxAttempts)
			}
			w.checkPrefix(t, big[1000:1000+1<<20])
		})
	}
}

// TestS3ReadRangeStops checks the two ends that are the caller's: its
// context and its writer. Neither is retried.
func TestS3ReadRangeStops(t *testing.T) {
	e := startFetchEnv(t)
	big := e.objects["big.bin"]
	f := e.file("big.bin")

	t.Run("context cancelled mid-transfer", func(t *testing.T) {
		r, proxy := e.reader(t, source.FetchOptions{})
		// ~100 chunks of 32 KiB, 20ms each: seconds, unless cancelled.
		proxy.SetFaults(testenv.Faults{SlowRate: 1, SlowDelay: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := newRangeWriter(f.Size)
		w.onWrite = cancel
		err := r.ReadRange(ctx, e.src, f, 0, f.Size, w)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if proxy.Requests() != 1 {
			t.Errorf("%d requests, want 1", proxy.Requests())
		}
		w.checkPrefix(t, big)
	})

	t.Run("writer fails", func(t *testing.T) {
		r, proxy := e.reader(t, source.FetchOptions{})
		w := newRangeWriter(f.Size)
		w.failAt = 2
		err := r.ReadRange(t.Context(), e.src, f, 0, f.Size, w)
		if !errors.Is(err, errWriterFull) {
			t.Errorf("err = %v, want the writer's error", err)
		}
		wantError(t, err, []string{"s3://data/ds/big.bin", "disk full"})
		if proxy.Requests() != 1 || w.writes != 2 {
			t.Errorf("%d requests and %d writes, want 1 and 2: a writer's error is final", proxy.Requests(), w.writes)
		}
		w.checkPrefix(t, big)
	})
}
