package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/time/rate"
)

const (
	// sendChunk is the most the server writes at once; each chunk waits
	// for its tokens first.
	sendChunk = 64 << 10
	// UploadBurst is the token bucket's depth: over any interval T the
	// server sends at most Rate*T + UploadBurst bytes (plus the chunk each
	// stream has been granted and is writing at the interval's start).
	UploadBurst = 256 << 10
)

// uploadLimit caps what a server sends: a token bucket of bytes shared by
// all streams, and a fixed number of streams.
type uploadLimit struct {
	bucket *rate.Limiter
	slots  chan struct{}
}

func newUploadLimit(bytesPerSec int64, streams int) *uploadLimit {
	return &uploadLimit{
		bucket: rate.NewLimiter(rate.Limit(bytesPerSec), UploadBurst),
		slots:  make(chan struct{}, streams),
	}
}

// tryAcquire takes a stream slot if one is free; it never waits, so that
// a busy node answers 429 at once and the caller tries elsewhere.
func (l *uploadLimit) tryAcquire() bool {
	select {
	case l.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// acquire takes a stream slot, waiting for one up to until (a caller that
// is willing to wait for the bytes waits for a stream too: in a swarm,
// the children of a part all ask for it the moment it arrives); false
// when none came free in time or ctx ended.
func (l *uploadLimit) acquire(ctx context.Context, until time.Time) bool {
	if l.tryAcquire() {
		return true
	}
	d := time.Until(until)
	if d <= 0 {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (l *uploadLimit) release() { <-l.slots }

// errSendWrite marks a failure to write to the client (it went away), as
// opposed to a failure to read the store.
var errSendWrite = errors.New("writing to the peer")

// send copies exactly n bytes of src to dst in chunks of at most
// sendChunk, each after the bucket grants it, calling sent after every
// chunk written. It returns the bytes written; an error wraps
// errSendWrite when dst failed, io.ErrUnexpectedEOF when src ended early.
func (l *uploadLimit) send(ctx context.Context, dst io.Writer, src io.Reader, n int64, sent func(int64)) (int64, error) {
	buf := make([]byte, min(n, sendChunk))
	var done int64
	for done < n {
		want := int(min(n-done, int64(len(buf))))
		got, err := io.ReadFull(src, buf[:want])
		if got > 0 {
			if werr := l.bucket.WaitN(ctx, got); werr != nil {
				return done, fmt.Errorf("%w: waiting for upload tokens: %w", errSendWrite, werr)
			}
			w, werr := dst.Write(buf[:got])
			done += int64(w)
			sent(int64(w))
			if werr != nil {
				return done, fmt.Errorf("%w: %w", errSendWrite, werr)
			}
		}
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return done, fmt.Errorf("the store's reader ended after %d of %d bytes: %w", done, n, io.ErrUnexpectedEOF)
		case err != nil:
			return done, err
		}
	}
	return done, nil
}
