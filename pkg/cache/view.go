package cache

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
)

// Errors of views; test with errors.Is.
var (
	// ErrNoView: the view has no record on disk (NotFound).
	ErrNoView = errors.New("no such view")
	// ErrNotStored: the release is not complete in store/ (NotFound).
	ErrNotStored = errors.New("not in the store")
	// ErrViewConflict: the view exists with another channel, medium or pin
	// (AlreadyExists: CSI's answer to an incompatible repeated publish).
	ErrViewConflict = errors.New("view exists with a different spec")
	// ErrPinned: a pinned view was asked to show another release
	// (FailedPrecondition).
	ErrPinned = errors.New("view is pinned to another release")
)

// Names inside views/. Every temp name starts with '.', which neither a
// version nor a view ID may, so a temp is never taken for a release tree, a
// view or a record.
const (
	currentName     = "current"
	releasesName    = "releases"
	currentTmpName  = ".current.tmp" // (2) of flip
	buildPrefix     = ".build-"      // a tree being linked, (1) of flip
	prunePrefix     = ".prune-"      // a tree being deleted, (1) of Prune
	recordSuffix    = ".json"
	maxViewIDLength = 128
)

// ViewRecord says whose view it is and what it serves. It is the view's
// record, <root>/views/<volume-id>/<pod-uid>.json.
type ViewRecord struct {
	VolumeID     string `json:"volumeID"`
	PodUID       string `json:"podUID"`
	PodName      string `json:"podName,omitempty"`
	PodNamespace string `json:"podNamespace,omitempty"`
	Channel      string `json:"channel"`
	// Medium is "disk", "memory" or empty (disk).
	Medium string `json:"medium,omitempty"`
	// Pinned, when set, is the only release the view may show.
	Pinned string `json:"pinned,omitempty"`
	// Credentials is the ID of the S3 credentials the view's volume reads
	// with (source.Credentials.ID; empty or "node" for the node's own):
	// every release the view shows must be proved readable with them.
	Credentials string `json:"credentials,omitempty"`
}

// ViewInfo is a view as found on disk.
type ViewInfo struct {
	ViewRecord
	// Current is the release `current` points at; empty when the link is
	// missing or dangling (Create repairs that).
	Current string `json:"current"`
	// Path is the directory to bind-mount at the pod's target path.
	Path string `json:"path"`
	// Releases are the complete trees under releases/, current included.
	Releases []string `json:"releases,omitempty"`
}

// Views manages the per-pod views below one cache root. All its state is on
// disk, so a restarted process answers Get, List and InUse as before. Safe
// for concurrent use: each call locks its view, and removing a volume's
// directory locks the volume. Use one Views per root in a process.
type Views struct {
	layout Layout
	locks  viewLocks
	spares *spares // nil: every tree is linked on the spot
}

// NewViews returns the views below l.Root.
func NewViews(l Layout) *Views { return &Views{layout: l} }

// Create makes the view of spec with current -> releases/<version>, or
// returns it unchanged when it exists with the same channel, medium and pin
// (even if current differs: callers flip explicitly). A recorded view whose
// current is missing or dangling is repaired by a flip to version.
//
// The record is written last and is the commit point: a view exists iff its
// record does.
//  1. Refuse a release that is not stored.
//  2. Clear a tree without a record: a crashed Create or Remove left it, and
//     it is not mounted (publishing needs a finished Create; Remove's caller
//     unmounts before the record goes).
//  3. Create the view directory, point current (flip without its fsyncs)
//     and write the record's temp file; then fsync all of them at once (one
//     journal commit rather than one per step).
//  4. Rename the record into place and fsync views/<volume>.
func (v *Views) Create(spec ViewRecord, version string) (ViewInfo, error) {
	if err := validateViewIDs(spec.VolumeID, spec.PodUID); err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view: %w", err)
	}
	fail := func(err error) (ViewInfo, error) {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: %w", spec.VolumeID, spec.PodUID, err)
	}
	if err := spec.validateFields(); err != nil {
		return fail(err)
	}
	if err := release.ValidateVersion(version); err != nil {
		return fail(err)
	}
	if spec.Pinned != "" && version != spec.Pinned {
		return fail(fmt.Errorf("release %s/%s: %w %s", spec.Channel, version, ErrPinned, spec.Pinned))
	}
	unlock := v.locks.view(spec.VolumeID, spec.PodUID, true)
	defer unlock()
	rec, err := v.readRecord(spec.VolumeID, spec.PodUID)
	switch {
	case err == nil:
		return v.reuse(rec, spec, version)
	case !errors.Is(err, ErrNoView):
		return fail(err)
	}
	if !isDirNoFollow(v.layout.StoreDir(spec.Channel, version)) { // (1)
		return fail(fmt.Errorf("release %s/%s: %w", spec.Channel, version, ErrNotStored))
	}
	dir := v.layout.ViewDir(spec.VolumeID, spec.PodUID)
	if err := os.RemoveAll(dir); err != nil { // (2)
		return fail(fmt.Errorf("clear leftovers: %w", err))
	}
	dirty, err := mkdirAll(filepath.Join(dir, releasesName), 0o755) // (3)
	if err == nil {
		var pointed []string
		pointed, err = v.point(spec, version)
		dirty = append(dirty, pointed...)
	}
	if err == nil {
		var tmp string
		tmp, err = v.writeRecordTmp(spec)
		dirty = append(dirty, tmp)
	}
	if err == nil {
		err = syncPaths(dirty)
	}
	if err == nil {
		err = v.commitRecord(spec) // (4)
	}
	if err != nil {
		// The record may be in place if only its fsync failed; it goes first,
		// as in Remove, so that no record outlives its tree.
		cleanup := errors.Join(removeSynced(v.layout.ViewRecord(spec.VolumeID, spec.PodUID)), os.RemoveAll(dir),
			removeIfExists(recordTmp(v.layout, spec.VolumeID, spec.PodUID)))
		return fail(errors.Join(fmt.Errorf("release %s/%s: %w", spec.Channel, version, err), cleanup))
	}
	klog.V(2).InfoS("View created", spec.logKeys("release", version)...)
	touchUse(v.layout, spec.Channel, version)
	return v.get(spec)
}

// reuse answers Create for a view that has a record.
func (v *Views) reuse(rec, spec ViewRecord, version string) (ViewInfo, error) {
	if rec.Channel != spec.Channel || rec.Medium != spec.Medium || rec.Pinned != spec.Pinned {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: %w: it has channel %q medium %q pinned %q, asked for channel %q medium %q pinned %q",
			spec.VolumeID, spec.PodUID, ErrViewConflict, rec.Channel, rec.Medium, rec.Pinned, spec.Channel, spec.Medium, spec.Pinned)
	}
	info, err := v.get(rec)
	if err != nil || info.Current != "" {
		return info, err
	}
	klog.InfoS("Repairing view without a valid current", rec.logKeys("release", version)...)
	if err := v.flip(rec, version); err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: release %s/%s: %w", rec.VolumeID, rec.PodUID, rec.Channel, version, err)
	}
	return v.get(rec)
}

// Flip points the view's current at version (see flip). It is a no-op when
// current already points there. The old tree stays until Prune: files open
// in it keep working anyway, being hardlinks.
func (v *Views) Flip(volumeID, podUID, version string) (ViewInfo, error) {
	if err := validateViewIDs(volumeID, podUID); err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view: %w", err)
	}
	fail := func(err error) (ViewInfo, error) {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: %w", volumeID, podUID, err)
	}
	if err := release.ValidateVersion(version); err != nil {
		return fail(err)
	}
	unlock := v.locks.view(volumeID, podUID, true)
	defer unlock()
	rec, err := v.readRecord(volumeID, podUID)
	if err != nil {
		return fail(err)
	}
	if rec.Pinned != "" && version != rec.Pinned {
		return fail(fmt.Errorf("release %s/%s: %w %s", rec.Channel, version, ErrPinned, rec.Pinned))
	}
	prev := currentRelease(v.layout.ViewDir(volumeID, podUID))
	if err := v.flip(rec, version); err != nil {
		return fail(fmt.Errorf("release %s/%s: %w", rec.Channel, version, err))
	}
	// The release left was in use until now; the one flipped to from now.
	touchUse(v.layout, rec.Channel, prev)
	touchUse(v.layout, rec.Channel, version)
	return v.get(rec)
}

// flip points current at releases/<version>; the caller holds the view lock.
// Leftovers of a crash (.build-*, .prune-*, .current.tmp) go first. Nothing
// is done when current already points at a complete tree of version.
//  1. Unless releases/<version> exists, link the stored release into
//     releases/.build-<version>, fsync its directories and rename it into
//     place (or take a spare, equally complete): a tree under its final
//     name is always complete.
//  2. Make the symlink .current.tmp -> releases/<version> (relative, so it
//     resolves inside the pod's bind mount too).
//  3. Rename it over current: readers resolve the old tree or the new one,
//     never nothing.
//  4. Fsync releases/ and the view directory together, so the flip
//     survives a crash. A crash before that may keep the new current
//     without the new tree's entry: current then dangles, which Create
//     repairs and the next flip replaces.
func (v *Views) flip(spec ViewRecord, version string) error {
	prev := currentRelease(v.layout.ViewDir(spec.VolumeID, spec.PodUID))
	dirty, err := v.point(spec, version)
	if err != nil {
		return err
	}
	if err := syncPaths(dirty); err != nil { // (4)
		return err
	}
	if len(dirty) > 0 {
		klog.V(2).InfoS("View flipped", spec.logKeys("release", version, "from", prev)...)
	}
	return nil
}

// point is steps 1-3 of flip; it returns the directories to fsync (none
// when current already pointed at version).
func (v *Views) point(spec ViewRecord, version string) ([]string, error) {
	dir := v.layout.ViewDir(spec.VolumeID, spec.PodUID)
	if currentRelease(dir) == version {
		return nil, nil
	}
	if err := removeLeftovers(dir); err != nil {
		return nil, err
	}
	releases := filepath.Join(dir, releasesName)
	if !isDirNoFollow(filepath.Join(releases, version)) { // (1)
		if err := v.buildTree(spec.Channel, version, releases); err != nil {
			return nil, err
		}
	}
	tmp := filepath.Join(dir, currentTmpName)
	if err := os.Symlink(releasesName+"/"+version, tmp); err != nil { // (2)
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentName)); err != nil { // (3)
		return nil, errors.Join(err, os.Remove(tmp))
	}
	return []string{releases, dir}, nil
}

// buildTree is step (1) of flip: it takes the release's spare tree when
// there is one (view_spare.go), else links the tree; either way a new
// spare is then prepared in the background.
func (v *Views) buildTree(channel, version, releases string) error {
	src := v.layout.StoreDir(channel, version)
	if !isDirNoFollow(src) {
		return ErrNotStored
	}
	if v.spares == nil {
		return v.linkRelease(src, version, releases)
	}
	defer v.spares.want(spareKey{channel, version})
	if v.spares.take(channel, version, filepath.Join(releases, version)) {
		v.spares.count("spare")
		return nil
	}
	if err := v.linkRelease(src, version, releases); err != nil {
		return err
	}
	v.spares.count("linked")
	return nil
}

// linkRelease links the stored release src as releases/<version>; the
// caller fsyncs releases/.
func (v *Views) linkRelease(src, version, releases string) error {
	tmp := filepath.Join(releases, buildPrefix+version)
	if err := linkTree(src, tmp, linkWorkers); err != nil {
		if !isDirNoFollow(src) { // removed from the store under our feet
			err = ErrNotStored
		}
		return errors.Join(fmt.Errorf("link tree: %w", err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, filepath.Join(releases, version)); err != nil {
		return errors.Join(err, os.RemoveAll(tmp))
	}
	return nil
}

// removeLeftovers deletes what a crash in flip or Prune can leave in a view.
func removeLeftovers(dir string) error {
	if err := os.Remove(filepath.Join(dir, currentTmpName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	releases := filepath.Join(dir, releasesName)
	entries, err := os.ReadDir(releases)
	if errors.Is(err, fs.ErrNotExist) {
		return mkdirAllSynced(releases, 0o755) // damaged view being repaired
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			if err := os.RemoveAll(filepath.Join(releases, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Get returns a view as found on disk, or ErrNoView.
func (v *Views) Get(volumeID, podUID string) (ViewInfo, error) {
	if err := validateViewIDs(volumeID, podUID); err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view: %w", err)
	}
	unlock := v.locks.view(volumeID, podUID, false)
	defer unlock()
	rec, err := v.readRecord(volumeID, podUID)
	if err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: %w", volumeID, podUID, err)
	}
	return v.get(rec)
}

// get is info with the error prefixed.
func (v *Views) get(rec ViewRecord) (ViewInfo, error) {
	info, err := v.info(rec)
	if err != nil {
		return ViewInfo{}, fmt.Errorf("cache: view %s/%s: %w", rec.VolumeID, rec.PodUID, err)
	}
	return info, nil
}

// List returns every view on disk, by volume and pod. A view that cannot be
// read is left out and reported in the error, next to the views that could.
func (v *Views) List() ([]ViewInfo, error) {
	vols, err := os.ReadDir(v.layout.ViewsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: list views: %w", err)
	}
	var views []ViewInfo
	var errs []error
	for _, vol := range vols {
		if !vol.IsDir() || validateViewID("volumeID", vol.Name()) != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(v.layout.ViewsDir(), vol.Name()))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) { // else removed meanwhile
				errs = append(errs, fmt.Errorf("cache: list views: %w", err))
			}
			continue
		}
		for _, f := range files {
			pod, ok := strings.CutSuffix(f.Name(), recordSuffix)
			if !ok || !f.Type().IsRegular() || validateViewIDs(vol.Name(), pod) != nil {
				continue // a view dir, a temp, or junk
			}
			info, err := v.Get(vol.Name(), pod)
			switch {
			case err == nil:
				views = append(views, info)
			case !errors.Is(err, ErrNoView): // else removed meanwhile
				errs = append(errs, err)
			}
		}
	}
	slices.SortFunc(views, func(a, b ViewInfo) int {
		return cmp.Or(strings.Compare(a.VolumeID, b.VolumeID), strings.Compare(a.PodUID, b.PodUID))
	})
	return views, errors.Join(errs...)
}

// InUse returns, per channel, the versions that a view's current points at
// or that a view is pinned to: retention must keep them in store/. It fails
// when any view cannot be read, since that view may use any release.
func (v *Views) InUse() (map[string]map[string]bool, error) {
	views, err := v.List()
	if err != nil {
		return nil, err
	}
	used := map[string]map[string]bool{}
	for _, view := range views {
		for _, version := range []string{view.Current, view.Pinned} {
			if version == "" {
				continue
			}
			if used[view.Channel] == nil {
				used[view.Channel] = map[string]bool{}
			}
			used[view.Channel][version] = true
		}
	}
	return used, nil
}

// Prune removes the release trees that current does not point at. Call it
// once a flip has settled: files open in an old tree stay readable, but an
// app that still opens new files by an old path would miss them.
//  1. Rename each old tree to .prune-<version>: Flip reuses a tree found
//     under its final name, so a half-deleted one must never carry it.
//  2. Remove the renamed trees (a crash leaves them to the next flip or Prune).
func (v *Views) Prune(volumeID, podUID string) error {
	if err := validateViewIDs(volumeID, podUID); err != nil {
		return fmt.Errorf("cache: view: %w", err)
	}
	unlock := v.locks.view(volumeID, podUID, true)
	defer unlock()
	fail := func(err error) error { return fmt.Errorf("cache: view %s/%s: prune: %w", volumeID, podUID, err) }
	rec, err := v.readRecord(volumeID, podUID)
	if err != nil {
		return fail(err)
	}
	dir := v.layout.ViewDir(volumeID, podUID)
	current := currentRelease(dir)
	if current == "" {
		return fail(errors.New("current is missing or dangling; nothing removed"))
	}
	releases := filepath.Join(dir, releasesName)
	entries, err := os.ReadDir(releases)
	if err != nil {
		return fail(err)
	}
	var pruned []string
	for _, e := range entries {
		name := e.Name()
		if name == current || strings.HasPrefix(name, ".") {
			continue
		}
		if err := os.Rename(filepath.Join(releases, name), filepath.Join(releases, prunePrefix+name)); err != nil { // (1)
			return fail(err)
		}
		pruned = append(pruned, name)
	}
	if err := removeLeftovers(dir); err != nil { // (2)
		return fail(err)
	}
	if len(pruned) > 0 {
		klog.V(2).InfoS("View pruned", rec.logKeys("release", current, "removed", pruned)...)
	}
	return nil
}

// Remove deletes a view; a missing view is not an error. The caller unmounts
// it first.
//  1. Remove the record and fsync views/<volume>: the view is gone. A crash
//     from here on leaves a tree without a record, which List ignores and
//     the next Create or Remove clears.
//  2. Remove the tree and a record temp that a crash may have left.
//  3. Remove views/<volume> if no other view is in it, under the volume lock
//     so that a concurrent Create of another pod never loses its parent.
func (v *Views) Remove(volumeID, podUID string) error {
	if err := validateViewIDs(volumeID, podUID); err != nil {
		return fmt.Errorf("cache: view: %w", err)
	}
	fail := func(err error) error { return fmt.Errorf("cache: view %s/%s: remove: %w", volumeID, podUID, err) }
	unlock := v.locks.view(volumeID, podUID, true)
	rec, recErr := v.readRecord(volumeID, podUID)
	if recErr == nil { // the release it showed was in use until now
		touchUse(v.layout, rec.Channel, currentRelease(v.layout.ViewDir(volumeID, podUID)))
	}
	err := removeSynced(v.layout.ViewRecord(volumeID, podUID)) // (1)
	if err == nil {
		err = errors.Join(os.RemoveAll(v.layout.ViewDir(volumeID, podUID)), // (2)
			removeSynced(recordTmp(v.layout, volumeID, podUID)))
	}
	unlock()
	if err != nil {
		return fail(err)
	}
	if recErr == nil {
		klog.V(2).InfoS("View removed", rec.logKeys()...)
	}
	unlock = v.locks.volume(volumeID) // (3)
	defer unlock()
	volDir := filepath.Join(v.layout.ViewsDir(), volumeID)
	err = os.Remove(volDir)
	switch {
	case err == nil:
		return syncDir(v.layout.ViewsDir())
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST):
		return nil
	}
	return fail(err)
}

// removeSynced removes a file, if present, and fsyncs its directory.
func removeSynced(path string) error {
	err := os.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// info reads what a recorded view holds.
func (v *Views) info(spec ViewRecord) (ViewInfo, error) {
	dir := v.layout.ViewDir(spec.VolumeID, spec.PodUID)
	info := ViewInfo{ViewRecord: spec, Path: dir, Current: currentRelease(dir)}
	entries, err := os.ReadDir(filepath.Join(dir, releasesName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ViewInfo{}, err
	}
	for _, e := range entries {
		if e.IsDir() && release.ValidateVersion(e.Name()) == nil {
			info.Releases = append(info.Releases, e.Name())
		}
	}
	return info, nil
}

// currentRelease is the version current points at, or "" when current is
// missing, is not ours, or dangles.
func currentRelease(dir string) string {
	target, err := os.Readlink(filepath.Join(dir, currentName))
	if err != nil {
		return ""
	}
	version, ok := strings.CutPrefix(target, releasesName+"/")
	if !ok || release.ValidateVersion(version) != nil || !isDirNoFollow(filepath.Join(dir, releasesName, version)) {
		return ""
	}
	return version
}
