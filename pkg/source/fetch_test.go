package source_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
)

// errWriterFull is what rangeWriter.failAt makes Write return.
var errWriterFull = errors.New("disk full")

// rangeWriter receives one range as the cache's writer would: each Write
// lands at the running offset of a buffer of the range's size. A byte
// written twice or out of order shows as wrong content or as a write past
// the end, which fails.
type rangeWriter struct {
	buf     []byte
	off     int
	writes  int
	failAt  int    // the failAt-th Write fails with errWriterFull (0: none)
	onWrite func() // called on every Write, before it lands
}

func newRangeWriter(n int64) *rangeWriter { return &rangeWriter{buf: make([]byte, n)} }

func (w *rangeWriter) Write(p []byte) (int, error) {
	w.writes++
	if w.onWrite != nil {
		w.onWrite()
	}
	if w.writes == w.failAt {
		return 0, errWriterFull
	}
	if w.off+len(p) > len(w.buf) {
		return 0, fmt.Errorf("write of %d bytes at offset %d overflows the range's %d bytes", len(p), w.off, len(w.buf))
	}
	w.off += copy(w.buf[w.off:], p)
	return len(p), nil
}

// checkComplete fails unless w received exactly want, once, in order.
func (w *rangeWriter) checkComplete(t *testing.T, want []byte) {
	t.Helper()
	if w.off != len(want) || sha256.Sum256(w.buf[:w.off]) != sha256.Sum256(want) {
		t.Errorf("writer got %d bytes (sha256 %x), want %d bytes (sha256 %x)",
			w.off, sha256.Sum256(w.buf[:w.off]), len(want), sha256.Sum256(want))
	}
}

// checkPrefix fails unless what w received so far is a prefix of want: a
// failed ReadRange may stop anywhere, never with wrong bytes.
func (w *rangeWriter) checkPrefix(t *testing.T, want []byte) {
	t.Helper()
	if w.off > len(want) || !bytes.Equal(w.buf[:w.off], want[:w.off]) {
		t.Errorf("writer got %d bytes that are not a prefix of the range", w.off)
	}
}
