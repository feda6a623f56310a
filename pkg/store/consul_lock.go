package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	// consulSessionTTL is how long a replica that stopped renewing keeps
	// the leadership; Consul may take up to twice that to expire it, and
	// then holds the key for its lock-delay (15 s by default) so that the
	// old leader notices before a new one starts.
	consulSessionTTL = "15s"
	// consulLockWaitTime bounds each blocking read of a waiting Campaign.
	// api.Lock cannot interrupt that read, so it is how long a waiting
	// Campaign may take to return after its ctx ends.
	consulLockWaitTime = 5 * time.Second
	// consulCleanupTimeout bounds releasing a lock and ending a session
	// when the caller gave no context for it.
	consulCleanupTimeout = 10 * time.Second
)

// consulLeadership is a held session lock on prefix+"leader/"+name.
//
// The backend creates the session itself rather than letting api.Lock do it,
// so that it owns the goroutine that renews the session and can wait for it
// to end: after Resign returns, nothing of the leadership runs any more.
type consulLeadership struct {
	b       *ConsulBackend
	key     string
	session string
	lock    *api.Lock
	lost    <-chan struct{} // closed by api.Lock's monitor goroutine

	stopRenew chan struct{} // closed to end the renewal (which destroys the session)
	renewDone chan struct{} // closed when the renewal goroutine has returned

	resignOnce sync.Once
	resignErr  error
}

// Campaign blocks until this replica holds the lock named name or ctx ends.
//
//  1. Create a session with a TTL and keep renewing it in the background.
//  2. Acquire the lock key with that session (api.Lock waits with blocking
//     reads while another session holds it, and then watches the key).
//  3. On failure, end the session so that nothing is left behind.
func (b *ConsulBackend) Campaign(ctx context.Context, name string) (Leadership, error) {
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("store: consul: campaign %q: name must be non-empty and contain no '/'", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &consulLeadership{b: b, key: b.prefix + consulLeaderDir + name}
	if err := l.startSession(name); err != nil { // (1)
		return nil, err
	}
	if err := l.acquire(ctx); err != nil { // (2)
		cctx, cancel := cleanupContext()
		defer cancel()
		_ = l.endSession(cctx) // (3)
		return nil, err
	}
	b.track(l)
	return l, nil
}

func (l *consulLeadership) startSession(name string) error {
	entry := &api.SessionEntry{
		Name:     "hydra leader " + name,
		TTL:      consulSessionTTL,
		Behavior: api.SessionBehaviorRelease,
	}
	// Not ctx: a request cut short may still create the session, which
	// would then be left to expire. A cancelled ctx stops acquire at once.
	cctx, cancel := cleanupContext()
	defer cancel()
	id, _, err := l.b.client.Session().Create(entry, (&api.WriteOptions{}).WithContext(cctx))
	if err != nil {
		return fmt.Errorf("store: consul: campaign for %q: create session at %s: %w", l.key, l.b.addr, err)
	}
	l.session = id
	l.stopRenew = make(chan struct{})
	l.renewDone = make(chan struct{})
	go func() {
		defer close(l.renewDone)
		// It returns when stopRenew closes (after destroying the session)
		// or when the session is gone; the lock's monitor notices the
		// latter on its own, through the key.
		_ = l.b.client.Session().RenewPeriodic(consulSessionTTL, id, nil, l.stopRenew)
	}()
	return nil
}

// endSession stops the renewal, which destroys the session, and waits for it.
func (l *consulLeadership) endSession(ctx context.Context) error {
	close(l.stopRenew)
	select {
	case <-l.renewDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: consul: end session of %q: %w", l.key, ctx.Err())
	}
}

func (l *consulLeadership) acquire(ctx context.Context) error {
	lock, err := l.b.client.LockOpts(&api.LockOptions{
		Key:          l.key,
		Session:      l.session,
		LockWaitTime: consulLockWaitTime,
	})
	if err != nil {
		return fmt.Errorf("store: consul: campaign for %q: %w", l.key, err)
	}
	stop := make(chan struct{})
	unhook := context.AfterFunc(ctx, func() { close(stop) })
	lost, err := lock.Lock(stop)
	unhook()
	switch {
	case err != nil:
		return fmt.Errorf("store: consul: campaign for %q at %s: %w", l.key, l.b.addr, err)
	case lost == nil: // stop closed before the lock was ours
		return ctx.Err()
	}
	l.lock, l.lost = lock, lost
	if ctx.Err() != nil { // acquired just as ctx ended: give it back
		rctx, cancel := cleanupContext()
		defer cancel()
		_ = l.unlock(rctx)
		return ctx.Err()
	}
	return nil
}

// Lost is closed when the lock key no longer names this session: after
// Resign, when the session expires or is destroyed, when another client
// changes the key, or on any error watching it (the agent is gone).
func (l *consulLeadership) Lost() <-chan struct{} { return l.lost }

// Resign releases the lock, destroys the session, and waits for both
// background goroutines to end. Only the first call does anything.
func (l *consulLeadership) Resign(ctx context.Context) error {
	l.resignOnce.Do(func() {
		l.b.untrack(l)
		l.resignErr = errors.Join(l.unlock(ctx), l.endSession(ctx))
	})
	return l.resignErr
}

// unlock unlocks the key, which wakes the lock's monitor, and waits for
// the monitor to close lost.
func (l *consulLeadership) unlock(ctx context.Context) error {
	var err error
	if uerr := l.lock.Unlock(); uerr != nil {
		err = fmt.Errorf("store: consul: resign %q at %s: %w", l.key, l.b.addr, uerr)
	}
	select {
	case <-l.lost:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("store: consul: resign %q: lock monitor still running: %w", l.key, ctx.Err()))
	}
	return err
}

// cleanupContext bounds the clean-up after a failed or cancelled Campaign,
// and Close, whose callers have no context to give.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), consulCleanupTimeout)
}

func (b *ConsulBackend) track(l *consulLeadership) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leaders[l] = struct{}{}
}

func (b *ConsulBackend) untrack(l *consulLeadership) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.leaders, l)
}

func (b *ConsulBackend) heldLeaderships() []*consulLeadership {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*consulLeadership, 0, len(b.leaders))
	for l := range b.leaders {
		out = append(out, l)
	}
	return out
}
