package cache

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/checksum"
	"github.com/hydra-csi/hydra/pkg/source"
)

// partDone is a fetched part and the CRC of its bytes.
type partDone struct {
	key partKey
	crc uint64
	n   int64
	// from is the peer that sent it; empty for the origin.
	from string
}

// fetchParts creates the files in order and fetches every part not in
// done, with at most Requests range requests in flight across all
// downloads of the cache. A file's parts are queued as soon as the file
// exists, so creating thousands of files overlaps fetching the first
// ones. Finished parts go to a committer that syncs the data and then
// journals them; done is updated with every part that was journaled.
//
// The fetches run on a fixed set of workers rather than a goroutine per
// part: a fetch goes deep through the S3 client's middleware, and a fresh
// goroutine pays to grow its stack to that depth every time.
func (c *Cache) fetchParts(ctx context.Context, reader source.Reader, run *fetchRun, files []plannedFile, done map[partKey]uint64, j *journal) error {
	// The parts to fetch are listed before the committer starts, since it
	// writes to done.
	todo := make([][]int, len(files))
	for i, f := range files {
		if f.linkFrom != "" {
			continue
		}
		for p := range f.parts {
			if _, ok := done[partKey{f.idx, p}]; !ok {
				todo[i] = append(todo[i], p)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan partDone, 64)
	commitErr := make(chan error, 1)
	go func() { commitErr <- c.committer(run, files, results, done, j) }()

	var (
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	type job struct {
		f plannedFile
		p int
	}
	queue := make(chan job)
	var wg sync.WaitGroup
	for range cap(c.requests) {
		wg.Go(func() {
			for t := range queue {
				if !c.acquireRequest(ctx) {
					return
				}
				res, err := c.fetchPart(ctx, reader, run, t.f, t.p)
				c.releaseRequest()
				if err != nil {
					fail(err)
					return
				}
				results <- res
			}
		})
	}
	err := func() error {
		defer close(queue)
		for i, f := range files {
			if err := c.createFile(f); err != nil {
				return err
			}
			if f.linkFrom != "" {
				run.serve.linked(f)
			}
			for _, p := range todo[i] {
				select {
				case queue <- job{f, p}:
				case <-ctx.Done():
					return nil
				}
			}
		}
		return nil
	}()
	if err != nil {
		fail(err)
	}
	wg.Wait()
	close(results)
	if err := <-commitErr; err != nil && first == nil {
		first = err
	}
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// acquireRequest takes one of the Requests budget's slots for a range
// request, waiting while all are taken; false when ctx ends first.
func (c *Cache) acquireRequest(ctx context.Context) bool {
	select {
	case c.requests <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// releaseRequest gives back the slot of acquireRequest.
func (c *Cache) releaseRequest() { <-c.requests }

// fetchPart fetches one part into its place in the file, hashing it:
// from a peer when the plan names one that sends it, else from the origin.
func (c *Cache) fetchPart(ctx context.Context, reader source.Reader, run *fetchRun, f plannedFile, p int) (partDone, error) {
	if res, ok, err := c.fetchFromPeers(ctx, run, f, p); ok || err != nil {
		return res, err
	}
	off := int64(p) * c.partSize
	n := partLen(f.file.Size, c.partSize, p)
	res, err := c.writePart(f, p, run.prog, func(w io.Writer) error {
		return reader.ReadRange(ctx, f.src, f.file, off, n, w)
	})
	if err != nil {
		return partDone{}, err
	}
	run.prog.fromOrigin.Add(res.n)
	c.metrics.fetched.WithLabelValues(sourceOrigin).Add(float64(res.n))
	return res, nil
}

// diskError is a failure of the node's own side of a part: opening or
// writing its file. A peer's failure never is one.
type diskError struct{ err error }

func (e *diskError) Error() string { return e.err.Error() }
func (e *diskError) Unwrap() error { return e.err }

// writePart streams part p of f, as read by read, into its place in the
// file and hashes it. On failure the bytes it counted as progress are
// given back, so that the next source starts the part over.
func (c *Cache) writePart(f plannedFile, p int, prog *progress, read func(io.Writer) error) (partDone, error) {
	off := int64(p) * c.partSize
	n := partLen(f.file.Size, c.partSize, p)
	h, err := checksum.New(f.alg)
	if err != nil {
		return partDone{}, err
	}
	out, err := os.OpenFile(f.path, os.O_WRONLY, 0)
	if err != nil {
		return partDone{}, &diskError{fmt.Errorf("open %s: %w", f.name(), err)}
	}
	w := &partWriter{f: out, off: off, h: h, prog: prog, m: c.metrics}
	err = read(w)
	if cerr := out.Close(); cerr != nil && w.err == nil {
		w.err = cerr
	}
	if w.err != nil {
		prog.done.Add(-w.n)
		return partDone{}, &diskError{fmt.Errorf("%s bytes %d-%d: write: %w", f.name(), off, off+n-1, w.err)}
	}
	if err == nil && w.n != n {
		err = fmt.Errorf("got %d bytes: %w", w.n, ErrVerify)
	}
	if err != nil {
		prog.done.Add(-w.n)
		return partDone{}, fmt.Errorf("%s bytes %d-%d: %w", f.name(), off, off+n-1, err)
	}
	crc, err := checksum.Sum64(h)
	if err != nil {
		return partDone{}, err
	}
	return partDone{key: partKey{f.idx, p}, crc: crc, n: n}, nil
}

// partWriter writes a part's bytes at their offset and hashes them. It
// keeps its own write error, so that a caller tells the node's disk
// failing from the source failing.
type partWriter struct {
	f    *os.File
	off  int64
	n    int64
	h    hash.Hash
	prog *progress
	m    *metrics
	err  error
}

func (w *partWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off+w.n)
	w.h.Write(p[:n])
	w.n += int64(n)
	w.prog.done.Add(int64(n))
	w.m.bytes.Add(float64(n))
	if err != nil {
		w.err = err
	}
	return n, err
}

// committer makes finished parts durable before journaling them: every
// CommitInterval (or 64 parts) it syncs the filesystem under tmp once —
// cheaper than one fsync per file — and appends the batch to the journal.
func (c *Cache) committer(run *fetchRun, files []plannedFile, results <-chan partDone, done map[partKey]uint64, j *journal) error {
	ticker := time.NewTicker(c.commit)
	defer ticker.Stop()
	// While peers wait for parts of this download, finished parts are
	// journaled (and so served) at once rather than once per interval,
	// at most one sync per peerCommitInterval.
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	var (
		batch     []partDone
		failed    error
		lastFlush time.Time
		armed     bool
	)
	flush := func() {
		if len(batch) == 0 || failed != nil {
			return
		}
		lastFlush = time.Now()
		if err := syncFS(run.tmp); err != nil {
			failed = err
			return
		}
		if err := j.appendParts(batch); err != nil {
			failed = err
			return
		}
		run.mu.Lock()
		for _, p := range batch {
			done[p.key] = p.crc
			if p.from != "" {
				run.from[p.key] = p.from
			}
		}
		run.mu.Unlock()
		run.serve.add(batch)
		if err := c.checkPeerFiles(run, files, batch, done, j); err != nil {
			failed = err
			return
		}
		batch = batch[:0]
	}
	flushForPeers := func() {
		if len(batch) == 0 || armed {
			return
		}
		if wait := peerCommitInterval - time.Since(lastFlush); wait > 0 {
			soon.Reset(wait)
			armed = true
			return
		}
		flush()
	}
	for {
		select {
		case p, ok := <-results:
			if !ok {
				flush()
				return failed
			}
			batch = append(batch, p)
			switch {
			case len(batch) >= 64:
				flush()
			case run.serve.waited():
				flushForPeers()
			}
		case <-run.serve.demanded():
			flushForPeers()
		case <-soon.C:
			armed = false
			flush()
		case <-ticker.C:
			flush()
		}
	}
}

// syncFS flushes every dirty page of the filesystem holding dir.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = unix.Syncfs(int(d.Fd()))
	return errors.Join(err, d.Close())
}
