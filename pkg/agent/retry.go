package agent

import "time"

// Default delays between attempts at a release whose background download
// failed.
const (
	DefaultRetryBase = 5 * time.Second
	DefaultRetryMax  = 5 * time.Minute
)

// retry is the back-off of one release whose background download failed.
// Without it the next reconcile, which the failure itself triggers, would
// try again at once: an object changed since publish or a full disk made
// the agent ask the manager for the manifest and S3 for the object in a
// loop, tens of times a second. A CSI call that needs the release
// (NodeStage, through Ensure) does not wait for it.
type retry struct {
	attempts int
	at       time.Time
}

// retryDelay doubles from RetryBase with each failed attempt, up to RetryMax.
func (a *Agent) retryDelay(attempts int) time.Duration {
	d := a.opts.RetryBase
	for i := 1; i < attempts && d < a.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, a.opts.RetryMax)
}

// backOff records a failed attempt at key and asks for a reconcile once it
// may be tried again. The caller holds a.mu.
func (a *Agent) backOff(key string) {
	r := a.retries[key]
	r.attempts++
	d := a.retryDelay(r.attempts)
	r.at = a.opts.Clock.Now().Add(d)
	a.retries[key] = r
	a.opts.Clock.AfterFunc(d, a.Poke)
}

// retryDue reports whether w may be downloaded in the background now.
func (a *Agent) retryDue(w want) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, ok := a.retries[w.channel+"/"+w.version]
	return !ok || !a.opts.Clock.Now().Before(r.at)
}
