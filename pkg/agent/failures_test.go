package agent

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// TestErrorKind: a space error, however wrapped, reaches the manager as
// NoSpace (an InsufficientSpace Event); anything else as a plain failure.
func TestErrorKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want release.ErrorKind
	}{
		{fmt.Errorf("cache: release c/v needs 9 more bytes: %w", cache.ErrNoSpace), release.ErrorKindNoSpace},
		{fmt.Errorf("cache: memory: load c/v: %w", fmt.Errorf("copy: %w", syscall.ENOSPC)), release.ErrorKindNoSpace},
		{errors.New("s3://b/k: object changed since publish"), release.ErrorKindOther},
		{fmt.Errorf("verify: %w", cache.ErrVerify), release.ErrorKindOther},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestRetryBackOff: a failed background download is not tried again until
// its delay has passed on the agent's clock, which then wakes the agent;
// the delay doubles with each failure up to RetryMax, and a success (or
// the release no longer being wanted) clears it.
func TestRetryBackOff(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	c, err := cache.New(cache.Options{Root: t.TempDir(), Reader: source.NewReaderMux(source.FetchOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Node: "n", Client: cl, Cache: c, Views: cache.NewViews(c.Layout()),
		RetryBase: time.Second, RetryMax: 3 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	w := want{channel: "c", version: "v2"}
	woken := func() bool {
		select {
		case <-a.wake:
			return true
		default:
			return false
		}
	}
	if !a.retryDue(w) {
		t.Fatal("a release never tried is not due")
	}
	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		a.recordResult(w, errors.New("object changed since publish"))
		woken() // the failure's own wake-up, if any
		clk.Step(delay - time.Millisecond)
		if a.retryDue(w) || woken() {
			t.Fatalf("failure %d: due (or woken) before its delay %s", i+1, delay)
		}
		clk.Step(time.Millisecond)
		if !a.retryDue(w) {
			t.Fatalf("failure %d: not due after its delay %s", i+1, delay)
		}
		// The fake clock may run AfterFunc in a goroutine of its own; the
		// deadline only guards against a hang.
		for deadline := time.Now().Add(time.Minute); !woken(); runtime.Gosched() {
			if time.Now().After(deadline) {
				t.Fatalf("failure %d: the agent was not woken once its delay passed", i+1)
			}
		}
	}
	a.recordResult(w, nil)
	if !a.retryDue(w) {
		t.Error("still backing off after a success")
	}
	a.recordResult(w, errors.New("boom"))
	a.forgetFailures(nil)
	if !a.retryDue(w) {
		t.Error("still backing off a release no longer wanted")
	}
}
