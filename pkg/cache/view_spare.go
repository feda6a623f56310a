package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Spare trees. Linking a view's release tree is most of a pod start on a
// node that already holds the release: a link per file and an fsync per
// directory, ~20 ms for 1,000 files on a virtual disk. Views with spares
// keep, for each stored release that pods use or are moving to, a couple
// of trees linked ahead of time:
//
//	<root>/views/.spares/<channel>/<version>@<store-id>-<slot>/<dataset>/...
//
// A view that needs the release's tree takes a spare by one rename, and the
// spares are made up again in the background, one tree at a time. A burst
// of more pod starts than spares takes them all and links the rest on the
// spot, as without spares. <store-id> names the very store directory the
// spares were linked from (inode and change time), so a spare is never
// taken for a release that was removed and stored again with other
// content.

const (
	sparesName = ".spares" // below views/; a dot name is never a volume ID
	spareSep   = "@"       // never in a version
	// sparesPerRelease is how many spares a release keeps: pod starts that
	// follow each other closer than a tree takes to link still find one.
	sparesPerRelease = 2
)

// spareName is the name of a spare in its channel's directory.
func spareName(version, storeID string, slot int) string {
	return fmt.Sprintf("%s%s%s-%d", version, spareSep, storeID, slot)
}

// SpareOptions turn on spare trees (Views.EnableSpares).
type SpareOptions struct {
	// Hold keeps a release in store/ while its spare is linked (Cache.Hold);
	// nil: nothing holds it, and a spare of a release removed meanwhile
	// lasts until the next PruneSpares.
	Hold func(channel, version string) (unhold func(), err error)
	// Registerer gets hydra_view_trees_total; nil: not registered.
	Registerer prometheus.Registerer
}

type spareKey struct{ channel, version string }

// spares is the background linker of one Views.
type spares struct {
	root   string // views/.spares
	layout Layout
	hold   func(channel, version string) (func(), error)
	trees  *prometheus.CounterVec

	mu      sync.Mutex
	idle    *sync.Cond // broadcast when the queue runs dry
	queue   []spareKey
	queued  map[spareKey]bool // queued or being linked
	again   map[spareKey]bool // wanted again while being linked
	running bool
	// linking is held while a spare is linked and by PruneSpares, so that
	// pruning never deletes a tree being built.
	linking sync.Mutex
}

// EnableSpares makes v keep spare trees (see above). Call it once, before
// v is used.
func (v *Views) EnableSpares(opts SpareOptions) error {
	s := &spares{root: filepath.Join(v.layout.ViewsDir(), sparesName), layout: v.layout, hold: opts.Hold,
		queued: map[spareKey]bool{}, again: map[spareKey]bool{},
		trees: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hydra_view_trees_total",
			Help: "Release trees put into views, by source: a spare linked ahead (spare) or linked on the spot (linked).",
		}, []string{"source"}),
	}
	s.idle = sync.NewCond(&s.mu)
	s.trees.WithLabelValues("spare")
	s.trees.WithLabelValues("linked")
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(s.trees); err != nil {
			return fmt.Errorf("cache: spare trees: %w", err)
		}
	}
	v.spares = s
	return nil
}

// PrepareSpare asks for a spare tree of a stored release, linked in the
// background unless one is there. Without spares it does nothing.
func (v *Views) PrepareSpare(channel, version string) {
	if v.spares == nil || release.ValidateVersion(version) != nil || !validChannelDir(channel) {
		return
	}
	v.spares.want(spareKey{channel, version})
}

// validChannelDir refuses a channel name that is not one path element.
func validChannelDir(channel string) bool {
	return channel != "" && !strings.HasPrefix(channel, ".") && !strings.ContainsRune(channel, '/')
}

// takeSpare moves the release's spare, if there is one for its current
// store directory, to dst (which must not exist). It reports whether it
// did; a failed rename is logged and the caller links the tree itself.
func (s *spares) take(channel, version, dst string) bool {
	id, err := storeID(s.layout.StoreDir(channel, version))
	if err != nil {
		return false
	}
	for slot := range sparesPerRelease {
		err := os.Rename(filepath.Join(s.root, channel, spareName(version, id, slot)), dst)
		if err == nil {
			return true
		}
		if !errors.Is(err, fs.ErrNotExist) {
			klog.ErrorS(err, "Taking a spare view tree; linking one instead", "channel", channel, "release", version)
			return false
		}
	}
	return false
}

// count records where a view's tree came from.
func (s *spares) count(source string) { s.trees.WithLabelValues(source).Inc() }

// want queues a release's spares. A release already queued is not queued
// twice; one being linked is queued again when done, since a spare may
// have been taken meanwhile.
func (s *spares) want(k spareKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued[k] {
		if !slices.Contains(s.queue, k) {
			s.again[k] = true
		}
		return
	}
	s.queued[k] = true
	s.queue = append(s.queue, k)
	if !s.running {
		s.running = true
		go s.work()
	}
}

// work links the queued spares one after the other, then exits. It runs
// on an OS thread of its own at a lower CPU priority (nice 10), and links
// on that thread alone, so that a pod start that comes meanwhile gets the
// CPUs first; the thread ends with the goroutine.
func (s *spares) work() {
	runtime.LockOSThread() // never unlocked: Go then ends the thread, nice and all
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10); err != nil {
		klog.V(4).InfoS("Linking spare view trees at normal priority", "err", err.Error())
	}
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.running = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		k := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		if err := s.link(k); err != nil {
			klog.ErrorS(err, "Linking a spare view tree", "channel", k.channel, "release", k.version)
		}
		s.mu.Lock()
		if s.again[k] {
			delete(s.again, k)
			s.queue = append(s.queue, k)
		} else {
			delete(s.queued, k)
		}
		s.mu.Unlock()
	}
}

// waitIdle returns once no spare is queued or being linked (for tests).
func (s *spares) waitIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.running {
		s.idle.Wait()
	}
}

// link makes the missing spares of k, unless k is not stored. For each:
//  1. Hold the release, so that retention cannot remove it halfway.
//  2. Link it into .spares/<channel>/.build-<version> (linkTree fsyncs
//     every directory it makes).
//  3. Rename that to <version>@<store-id>-<slot> and fsync the channel
//     directory: a spare under its final name is always complete.
func (s *spares) link(k spareKey) error {
	for slot := range sparesPerRelease {
		if err := s.linkSlot(k, slot); err != nil {
			return err
		}
	}
	return nil
}

func (s *spares) linkSlot(k spareKey, slot int) error {
	s.linking.Lock()
	defer s.linking.Unlock()
	if s.hold != nil { // (1)
		unhold, err := s.hold(k.channel, k.version)
		if err != nil {
			return nil // not stored (any more): nothing to prepare
		}
		defer unhold()
	}
	src := s.layout.StoreDir(k.channel, k.version)
	id, err := storeID(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, k.channel)
	final := filepath.Join(dir, spareName(k.version, id, slot))
	if isDirNoFollow(final) {
		return nil
	}
	if err := mkdirAllSynced(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, buildPrefix+k.version)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := linkTree(src, tmp, 1); err != nil { // (2)
		return errors.Join(fmt.Errorf("link tree: %w", err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, final); err != nil { // (3)
		return errors.Join(err, os.RemoveAll(tmp))
	}
	klog.V(4).InfoS("Spare view tree linked", "channel", k.channel, "release", k.version)
	return syncDir(dir)
}

// PruneSpares removes the spares of releases that are no longer in store/
// (or were stored again since), and what a crash left half-built. Call it
// after the store's retention. Without spares, or while a spare is being
// linked (the next call prunes), it does nothing.
//  1. Rename a stale spare to .prune-<name>: a view may be taking it by
//     rename at this very moment, and must get it whole or not at all.
//  2. Remove the renamed tree.
func (v *Views) PruneSpares() error {
	s := v.spares
	if s == nil {
		return nil
	}
	if !s.linking.TryLock() {
		return nil
	}
	defer s.linking.Unlock()
	channels, err := os.ReadDir(s.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cache: prune spare trees: %w", err)
	}
	var errs []error
	for _, ch := range channels {
		if err := s.pruneChannel(ch.Name()); err != nil {
			errs = append(errs, fmt.Errorf("cache: prune spare trees of %s: %w", ch.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (s *spares) pruneChannel(channel string) error {
	dir := filepath.Join(s.root, channel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") { // a crash's leftover: nothing is being linked now
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return err
			}
			continue
		}
		version, _, _ := strings.Cut(name, spareSep)
		if s.current(channel, version, name) {
			continue
		}
		tmp := filepath.Join(dir, prunePrefix+name)
		err := os.Rename(filepath.Join(dir, name), tmp) // (1)
		if errors.Is(err, fs.ErrNotExist) {
			continue // taken meanwhile
		}
		if err == nil {
			err = os.RemoveAll(tmp) // (2)
		}
		if err != nil {
			return err
		}
		klog.V(4).InfoS("Spare view tree removed", "channel", channel, "release", version)
	}
	err = os.Remove(dir)
	if err == nil || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return nil
	}
	return err
}

// current reports whether name is a spare of the release as it is stored.
func (s *spares) current(channel, version, name string) bool {
	id, err := storeID(s.layout.StoreDir(channel, version))
	if err != nil {
		return false
	}
	for slot := range sparesPerRelease {
		if name == spareName(version, id, slot) {
			return true
		}
	}
	return false
}

// storeID names one store directory: its inode number and change time,
// which a release removed and stored again does not keep.
func storeID(dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", &fs.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", &fs.PathError{Op: "lstat", Path: dir, Err: fs.ErrNotExist}
	}
	return fmt.Sprintf("%d-%d", st.Ino, st.Ctim.Nano()), nil
}
