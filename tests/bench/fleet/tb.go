//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"testing"
)

// scenarioT is the testing.TB a scenario runs internal/fleet and testenv
// with outside `go test`: it implements what they call (Helper, Cleanup,
// Logf, Errorf, Fatalf, Skipf, Failed, TempDir, Setenv, Context, Name).
// The embedded TB is nil; any other method would panic, which is a bug of
// this file to fix by adding it.
type scenarioT struct {
	testing.TB
	name string
	log  io.Writer
	ctx  context.Context

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	msgs     []string
}

// runScenario calls f with a fresh scenarioT on its own goroutine, as
// go test does (Fatalf ends that goroutine), then runs the cleanups, last
// registered first. It returns the failures, nil when there were none.
func runScenario(ctx context.Context, name string, log io.Writer, f func(t *scenarioT)) []string {
	t := &scenarioT{name: name, log: log, ctx: ctx}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	if t.failed {
		return t.msgs
	}
	return nil
}

func (t *scenarioT) Helper()                  {}
func (t *scenarioT) Name() string             { return t.name }
func (t *scenarioT) Context() context.Context { return t.ctx }

func (t *scenarioT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *scenarioT) Logf(format string, args ...any) {
	_, _ = fmt.Fprintf(t.log, "%s: %s\n", t.name, fmt.Sprintf(format, args...))
}

func (t *scenarioT) Log(args ...any) { t.Logf("%s", fmt.Sprint(args...)) }

func (t *scenarioT) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.Logf("FAIL: %s", msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	t.msgs = append(t.msgs, msg)
}

func (t *scenarioT) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *scenarioT) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

func (t *scenarioT) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *scenarioT) FailNow()          { t.Fatalf("FailNow") }

func (t *scenarioT) Skipf(format string, args ...any) { t.Fatalf("cannot run: "+format, args...) }
func (t *scenarioT) Skip(args ...any)                 { t.Fatalf("cannot run: %s", fmt.Sprint(args...)) }

func (t *scenarioT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *scenarioT) TempDir() string {
	dir, err := os.MkdirTemp("", "hydra-fleet-bench-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *scenarioT) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		t.Fatalf("setenv %s: %v", key, err)
	}
	t.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}
