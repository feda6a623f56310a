package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/peer"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Fetching from peers and serving them (docs/node.md, "Fetching from
// peers").
//
// A download asks Peers, part by part (of files whose manifest entry has
// a checksum: a size alone would not catch a peer's wrong bytes), for the peers the manager names
// for the release (a peer.Plan) and takes the part from the first that
// sends it whole; the origin is the last resort. Nothing else changes:
// every part is hashed as it is written, journaled after it is durable,
// and every file is verified against the manifest. The journal records
// which peer sent a part, so a file that fails verification is blamed on
// the peers that sent parts of it — even after a restart — and fetched
// again from the origin only, while those peers are avoided for the
// release.
//
// Peer bytes are not the node's credentials' reading: a download with the
// node's credentials that takes any part from a peer marks itself like a
// download with a volume's credentials (access.go), before the first such
// part is journaled, so that the node's credentials prove they can read
// the release before any volume gets it.
//
// Serving: OpenRange hands out ranges of installed releases the node's
// credentials fetched (not marked), and of files of a download in flight
// with the node's credentials whose parts are journaled.

// Peers is where downloads take parts from besides the origin; the node
// agent implements it with the manager's naming and pkg/peer's client.
type Peers interface {
	// Plan returns the plan for the release as the manager names its
	// peers now; nil takes every part from the origin.
	Plan(channel, version string, id release.Identity) *peer.Plan
	// ReadRange streams r from the peer into w (peer.Client.ReadRange).
	ReadRange(ctx context.Context, to release.Peer, r peer.RangeRequest, wait time.Duration, w io.Writer) (int64, error)
}

const (
	// peerWait is how long a request to a part's parent in the plan may
	// wait there for the part to arrive.
	peerWait = 20 * time.Second
	// peerCooldown is how long a peer that failed in a way that says
	// something about the peer (unreachable, refused the token, too slow,
	// outside the protocol) is skipped, for every release.
	peerCooldown = 15 * time.Second
)

// Reasons a part was not taken from a peer (hydra_peer_fallbacks_total).
const (
	fallbackNotHeld     = "not-held"
	fallbackNotYet      = "not-yet"
	fallbackBusy        = "busy"
	fallbackRefused     = "refused"
	fallbackSlow        = "slow"
	fallbackBadAnswer   = "bad-answer"
	fallbackUnreachable = "unreachable"
)

var fallbackReasons = []string{fallbackNotHeld, fallbackNotYet, fallbackBusy, fallbackRefused,
	fallbackSlow, fallbackBadAnswer, fallbackUnreachable}

// fallbackReason sorts a failed peer request, and says whether it tells
// against the peer (cooldown).
func fallbackReason(err error) (string, bool) {
	switch {
	case errors.Is(err, peer.ErrNotHeld):
		return fallbackNotHeld, false
	case errors.Is(err, peer.ErrNotYet):
		return fallbackNotYet, false
	case errors.Is(err, peer.ErrBusy):
		return fallbackBusy, false
	case errors.Is(err, peer.ErrUnauthorized):
		return fallbackRefused, true
	case errors.Is(err, peer.ErrSlow):
		return fallbackSlow, true
	case errors.Is(err, peer.ErrBadAnswer), errors.Is(err, peer.ErrOutOfRange):
		return fallbackBadAnswer, true
	}
	return fallbackUnreachable, true
}

// peerState is what the cache remembers about peers across downloads.
type peerState struct {
	mu sync.Mutex
	// cool holds peers skipped until the time, after a failure.
	cool map[string]time.Time
	// liars holds, per release, the peers whose parts failed verification.
	liars map[string]map[string]bool
	// sourced keeps, per installed release, the bytes from peers and the
	// origin, for reports.
	sourced map[string][2]int64
}

func (s *peerState) avoid(key string) func(string) bool {
	now := time.Now()
	s.mu.Lock()
	liars := make(map[string]bool, len(s.liars[key]))
	for n := range s.liars[key] {
		liars[n] = true
	}
	for n, until := range s.cool {
		if now.Before(until) {
			liars[n] = true
		} else {
			delete(s.cool, n)
		}
	}
	s.mu.Unlock()
	return func(node string) bool { return liars[node] }
}

func (s *peerState) coolDown(node string) {
	s.mu.Lock()
	s.cool[node] = time.Now().Add(peerCooldown)
	s.mu.Unlock()
}

func (s *peerState) blame(key, node string) {
	s.mu.Lock()
	if s.liars[key] == nil {
		s.liars[key] = map[string]bool{}
	}
	s.liars[key][node] = true
	s.mu.Unlock()
}

// fetchRun is one run of one download: what its parts need to know
// beyond the file and part.
type fetchRun struct {
	rel      release.Release
	tmp      string
	prog     *progress
	byVolume bool
	// firstPart numbers each file's part 0 in the release (by file idx):
	// every node numbers parts alike, whatever it links or has.
	firstPart []uint64
	// originOnly holds the files a peer sent bad bytes of; read-only
	// while parts are fetched.
	originOnly map[int]bool
	// serve tells peers which parts are journaled (nil: not served).
	serve *serving

	mu sync.Mutex
	// from holds the parts a peer sent, by node: the journal's, and this
	// run's once journaled.
	from   map[partKey]string
	marked bool
	// suspect holds the files checkPeerFiles caught: fetched again, from
	// the origin, in the next round.
	suspect map[int]bool
}

// markPeerBytes marks the download as not all read with the node's
// credentials, once, before the first part from a peer is journaled.
func (r *fetchRun) markPeerBytes() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.marked || r.byVolume {
		return nil
	}
	if err := writeFileAtomic(filepath.Join(r.tmp, volumeFetchedName), nil); err != nil {
		return err
	}
	r.marked = true
	return nil
}

// numberParts numbers the parts of the release, files in manifest order.
func numberParts(files []plannedFile) []uint64 {
	first := make([]uint64, len(files))
	var n uint64
	for i, f := range files {
		first[i] = n
		n += uint64(f.parts) //nolint:gosec // G115: a part count is never negative
	}
	return first
}

// fetchFromPeers tries the plan's peers for part p of f, in order; ok
// false sends the caller to the origin. An error is the node's own (its
// disk, its context), never a peer's.
func (c *Cache) fetchFromPeers(ctx context.Context, run *fetchRun, f plannedFile, p int) (partDone, bool, error) {
	// A file without a checksum in the manifest is checked by its size
	// only, which would not catch a peer's wrong bytes: origin only.
	if c.peers == nil || run.originOnly[f.idx] || f.file.Checksum == nil {
		return partDone{}, false, nil
	}
	id := run.rel.Identity()
	plan := c.peers.Plan(run.rel.Channel, run.rel.Version, id)
	if plan == nil {
		return partDone{}, false, nil
	}
	key := flightKey(run.rel.Channel, run.rel.Version)
	off := int64(p) * c.partSize
	req := peer.RangeRequest{Channel: run.rel.Channel, Version: run.rel.Version, Identity: id,
		Dataset: f.dataset, Path: f.file.Path, Off: off, N: partLen(f.file.Size, c.partSize, p)}
	for _, hop := range plan.Route(run.firstPart[f.idx]+uint64(p), c.peerState.avoid(key)) { //nolint:gosec // G115: p >= 0
		wait := time.Duration(0)
		if hop.Wait {
			wait = peerWait
		}
		res, err := c.writePart(f, p, run.prog, func(w io.Writer) error {
			_, err := c.peers.ReadRange(ctx, hop.Peer, req, wait, w)
			return err
		})
		if err == nil {
			if err := run.markPeerBytes(); err != nil {
				return partDone{}, false, err
			}
			res.from = hop.Peer.Node
			run.prog.fromPeers.Add(res.n)
			c.metrics.fetched.WithLabelValues(sourcePeer).Add(float64(res.n))
			return res, true, nil
		}
		if ctx.Err() != nil {
			return partDone{}, false, ctx.Err()
		}
		var de *diskError
		if errors.As(err, &de) {
			return partDone{}, false, err
		}
		reason, against := fallbackReason(err)
		c.metrics.fallbacks.WithLabelValues(reason).Inc()
		if against {
			c.peerState.coolDown(hop.Peer.Node)
			klog.FromContext(ctx).V(2).Info("peer failed; skipping it for a while", "peer", hop.Peer.Node,
				"address", hop.Peer.Address, "channel", run.rel.Channel, "release", run.rel.Version,
				"file", f.name(), "part", p, "reason", reason, "err", err.Error())
		} else {
			klog.FromContext(ctx).V(4).Info("peer has not the part", "peer", hop.Peer.Node, "file", f.name(),
				"part", p, "reason", reason)
		}
	}
	return partDone{}, false, nil
}

// forgetFile drops a file that failed verification from the download: its
// journal lines, its parts done, and what peers may read of it, so that
// the next round fetches it again.
func (r *fetchRun) forgetFile(f plannedFile, done map[partKey]uint64, j *journal) error {
	if err := j.forget(f.idx); err != nil {
		return err
	}
	r.serve.drop(f.idx)
	r.mu.Lock()
	for q := range f.parts {
		delete(done, partKey{f.idx, q})
	}
	r.mu.Unlock()
	return nil
}

// checkPeerFiles verifies, as soon as their last part is journaled, the
// files of batch that peers sent parts of and whose checksum combines
// from the part CRCs (no re-read), so that a lying peer is caught and
// avoided after its first file rather than at the end of the download,
// and its bytes are no longer served on. A file caught is forgotten (the
// journal, the parts done, what is served) and marked suspect; the
// download's final verification finds it missing and fetches it again
// from the origin. Called by the committer after a flush.
func (c *Cache) checkPeerFiles(run *fetchRun, files []plannedFile, batch []partDone, done map[partKey]uint64, j *journal) error {
	seen := map[int]bool{}
	for _, p := range batch {
		idx := p.key.file
		if p.from == "" || seen[idx] {
			continue
		}
		seen[idx] = true
		f := files[idx]
		if f.file.Checksum == nil || f.file.Checksum.Algorithm != f.alg {
			continue // SHA-256: verified once, at the end
		}
		complete := true
		for q := range f.parts {
			if _, ok := done[partKey{idx, q}]; !ok {
				complete = false
				break
			}
		}
		if !complete {
			continue
		}
		err := c.verifyFile(f, done)
		if err == nil || !errors.Is(err, ErrVerify) {
			continue
		}
		if jerr := run.forgetFile(f, done, j); jerr != nil {
			return jerr
		}
		run.mu.Lock()
		run.suspect[idx] = true
		run.mu.Unlock()
		c.blameLiars(run, f, err)
	}
	return nil
}

// blameLiars records the peers that sent parts of a file that failed
// verification: avoided for the release, counted and logged. It reports
// whether any peer sent a part of the file.
func (c *Cache) blameLiars(run *fetchRun, f plannedFile, verr error) bool {
	run.mu.Lock()
	liars := map[string]bool{}
	for k, node := range run.from {
		if k.file == f.idx {
			liars[node] = true
			delete(run.from, k)
		}
	}
	run.mu.Unlock()
	key := flightKey(run.rel.Channel, run.rel.Version)
	for node := range liars {
		c.peerState.blame(key, node)
		c.metrics.liars.Inc()
		klog.InfoS("A peer sent bytes that fail verification; the file is fetched again from the origin and the peer avoided for the release",
			"peer", node, "channel", run.rel.Channel, "release", run.rel.Version, "file", f.name(), "err", verr.Error())
	}
	return len(liars) > 0
}

// serving is the state of a download in flight that peers may read: its
// files by dataset and path, and the parts journaled. changed is closed
// and replaced whenever parts are added, to wake waiting readers.
type serving struct {
	mu      sync.Mutex
	files   map[string]plannedFile
	avail   map[partKey]bool
	changed chan struct{}
	ended   bool
	// waiters counts the peers' requests waiting for parts; demand wakes
	// the committer when one starts to wait.
	waiters atomic.Int32
	demand  chan struct{}
}

// peerCommitInterval spaces the commits made early for waiting peers: a
// sync of the filesystem each, so not one per small file.
const peerCommitInterval = 20 * time.Millisecond

// wait counts a peer's request waiting for parts and asks the committer
// to journal what it has; the returned func ends the wait.
func (s *serving) wait() func() {
	s.waiters.Add(1)
	select {
	case s.demand <- struct{}{}:
	default:
	}
	return func() { s.waiters.Add(-1) }
}

// waited reports whether a peer waits for parts now.
func (s *serving) waited() bool { return s != nil && s.waiters.Load() > 0 }

// demanded is the channel of wait's wake-ups; nil (never ready) without
// serving.
func (s *serving) demanded() <-chan struct{} {
	if s == nil {
		return nil
	}
	return s.demand
}

func newServing(files []plannedFile, done map[partKey]uint64) *serving {
	s := &serving{files: make(map[string]plannedFile, len(files)), avail: make(map[partKey]bool, len(done)),
		changed: make(chan struct{}), demand: make(chan struct{}, 1)}
	for _, f := range files {
		s.files[f.dataset+"/"+f.file.Path] = f
	}
	for k := range done {
		s.avail[k] = true
	}
	return s
}

// add marks parts journaled.
func (s *serving) add(parts []partDone) {
	if s == nil {
		return
	}
	s.mu.Lock()
	for _, p := range parts {
		s.avail[p.key] = true
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// linked marks every part of a file hardlinked from a stored release.
func (s *serving) linked(f plannedFile) {
	if s == nil {
		return
	}
	parts := make([]partDone, f.parts)
	for p := range parts {
		parts[p].key = partKey{f.idx, p}
	}
	s.add(parts)
}

// drop forgets a file's parts (it failed verification).
func (s *serving) drop(idx int) {
	if s == nil {
		return
	}
	s.mu.Lock()
	for k := range s.avail {
		if k.file == idx {
			delete(s.avail, k)
		}
	}
	s.mu.Unlock()
}

// end wakes every waiting reader for good: the download is over.
func (s *serving) end() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if !s.ended {
		s.ended = true
		close(s.changed)
	}
	s.mu.Unlock()
}

// covered returns the file of dataset/path when parts covering [off,
// off+n) are journaled, and a channel closed when that may change.
func (s *serving) covered(dataset, path string, off, n, partSize int64) (plannedFile, bool, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[dataset+"/"+path]
	if !ok || s.ended {
		return f, false, false, nil
	}
	if n == 0 {
		return f, true, true, s.changed
	}
	for p := int(off / partSize); int64(p)*partSize < off+n; p++ {
		if !s.avail[partKey{f.idx, p}] {
			return f, true, false, s.changed
		}
	}
	return f, true, true, s.changed
}

// OpenRange implements peer.Store.
func (c *Cache) OpenRange(ctx context.Context, r peer.RangeRequest, wait time.Duration) (io.ReadCloser, error) {
	if err := checkPeerRange(r); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		rc, sv, changed, err := c.openRange(r)
		if err == nil || (!errors.Is(err, peer.ErrNotYet) && !errors.Is(err, peer.ErrNotHeld)) {
			return rc, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, err
		}
		// Not here yet: wait for the download's next journaled parts,
		// or poll for one to start (or to install).
		step := min(left, 200*time.Millisecond)
		done := func() {}
		if changed != nil {
			step = left
			done = sv.wait()
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
			t.Stop()
			done()
			return nil, ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
		done()
	}
}

func checkPeerRange(r peer.RangeRequest) error {
	if err := release.ValidateChannelName(r.Channel); err != nil {
		return fmt.Errorf("%w: %w", peer.ErrNotHeld, err)
	}
	if err := release.ValidateVersion(r.Version); err != nil {
		return fmt.Errorf("%w: %w", peer.ErrNotHeld, err)
	}
	if err := release.ValidateDatasetName(r.Dataset); err != nil {
		return fmt.Errorf("%w: %w", peer.ErrNotHeld, err)
	}
	if err := release.ValidatePath(r.Path); err != nil {
		return fmt.Errorf("%w: %w", peer.ErrNotHeld, err)
	}
	if r.Off < 0 || r.N < 0 {
		return peer.ErrOutOfRange
	}
	return nil
}

// openRange answers once: the bytes, or ErrNotYet with the channel that
// says when to look again, or ErrNotHeld.
func (c *Cache) openRange(r peer.RangeRequest) (io.ReadCloser, *serving, <-chan struct{}, error) {
	if c.StoredAs(r.Channel, r.Version, r.Identity) {
		if c.volumeFetched(r.Channel, r.Version) {
			// A volume's credentials read some of it, or the node's have
			// not proved peer bytes yet: not for other nodes.
			return nil, nil, nil, fmt.Errorf("%w: release %s/%s is not proved readable by the node's credentials", peer.ErrNotHeld, r.Channel, r.Version)
		}
		// Installed files are verified, read-only and the only entries of
		// store/ besides directories: the file's own size bounds the range.
		path := filepath.Join(c.layout.StoreDir(r.Channel, r.Version), r.Dataset, filepath.FromSlash(r.Path))
		rc, err := openSection(path, -1, r.Off, r.N)
		return rc, nil, nil, err
	}
	c.mu.Lock()
	var sv *serving
	if fl := c.flights[flightKey(r.Channel, r.Version)]; fl != nil && fl.creds == source.NodeCredentials && r.Identity.Matches(fl.id) {
		sv = fl.serve
	}
	c.mu.Unlock()
	if sv == nil {
		return nil, nil, nil, fmt.Errorf("%w: release %s/%s (%s)", peer.ErrNotHeld, r.Channel, r.Version, r.Identity)
	}
	f, known, ok, changed := sv.covered(r.Dataset, r.Path, r.Off, r.N, c.partSize)
	switch {
	case !known:
		return nil, nil, nil, fmt.Errorf("%w: %s/%s has no file %s/%s", peer.ErrNotHeld, r.Channel, r.Version, r.Dataset, r.Path)
	case r.N > f.file.Size-r.Off || r.Off > f.file.Size:
		return nil, nil, nil, peer.ErrOutOfRange
	case !ok:
		return nil, sv, changed, fmt.Errorf("%w: %s/%s %s/%s bytes %d+%d", peer.ErrNotYet, r.Channel, r.Version, r.Dataset, r.Path, r.Off, r.N)
	}
	rc, err := openSection(f.path, f.file.Size, r.Off, r.N)
	if errors.Is(err, peer.ErrNotHeld) {
		// Renamed into store/ between the two looks: look again.
		return nil, sv, changed, fmt.Errorf("%w: %w", peer.ErrNotYet, err)
	}
	return rc, nil, nil, err
}

// openSection opens bytes [off, off+n) of the regular file at path,
// which must have size bytes (-1: any size).
func openSection(path string, size, off, n int64) (io.ReadCloser, error) {
	in, err := os.Open(path) //nolint:gosec // G304: a validated manifest path below the cache root
	if err != nil {
		return nil, fmt.Errorf("%w: %w", peer.ErrNotHeld, err)
	}
	st, err := in.Stat()
	if err != nil || !st.Mode().IsRegular() || (size >= 0 && st.Size() != size) {
		_ = in.Close()
		return nil, fmt.Errorf("%w: no such file in the release", peer.ErrNotHeld)
	}
	if off > st.Size() || n > st.Size()-off {
		_ = in.Close()
		return nil, peer.ErrOutOfRange
	}
	return sectionCloser{io.NewSectionReader(in, off, n), in}, nil
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s sectionCloser) Close() error { return s.f.Close() }

// Sourced returns the bytes of a release that came from peers and from
// the origin, in this process.
func (c *Cache) Sourced(channel, version string) (fromPeers, fromOrigin int64) {
	c.peerState.mu.Lock()
	defer c.peerState.mu.Unlock()
	s := c.peerState.sourced[flightKey(channel, version)]
	return s[0], s[1]
}
