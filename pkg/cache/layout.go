// Package cache is a node's local release store: it downloads releases from
// their sources into tmp/, verifies every byte, installs them into store/ by
// one rename, and builds per-pod views whose `current` symlink flips
// atomically between releases (docs/design.md §4).
//
//	<root>/store/<channel>/<version>/<dataset>/...   complete, verified, read-only
//	<root>/tmp/<channel>/<version>/                  in-progress downloads (resumable)
//	<root>/meta/<channel>/<version>.json             the manifest of each stored release
//	<root>/meta/<channel>/<version>.volume-fetched   present when a volume's credentials fetched some of it
//	<root>/views/<volume-id>/<pod-uid>/              what a pod sees (bind-mounted read-only)
//	        current -> releases/<version>
//	        releases/<version>/<dataset>/...         hardlinks into store/
//	<root>/views/<volume-id>/<pod-uid>.json          the view's record (channel, pod, pin)
//
// Everything below one root is on one filesystem, so installs are renames
// and views are hardlinks: no data is copied after the download.
package cache

import (
	"path/filepath"
)

// Layout names the paths below one cache root.
type Layout struct {
	Root string
}

// StoreDir is where a complete, verified release lives.
func (l Layout) StoreDir(channel, version string) string {
	return filepath.Join(l.Root, "store", channel, version)
}

// ChannelStoreDir holds every stored release of a channel.
func (l Layout) ChannelStoreDir(channel string) string {
	return filepath.Join(l.Root, "store", channel)
}

// TmpDir holds an in-progress download of a release.
func (l Layout) TmpDir(channel, version string) string {
	return filepath.Join(l.Root, "tmp", channel, version)
}

// MetaFile records the manifest of a stored release.
func (l Layout) MetaFile(channel, version string) string {
	return filepath.Join(l.Root, "meta", channel, version+".json")
}

// VolumeFetchedFile marks a stored release that holds bytes fetched with
// a volume's own credentials rather than the node's (see access.go).
func (l Layout) VolumeFetchedFile(channel, version string) string {
	return filepath.Join(l.Root, "meta", channel, version+volumeFetchedSuffix)
}

// ViewsDir holds every view.
func (l Layout) ViewsDir() string { return filepath.Join(l.Root, "views") }

// ViewDir is one pod's view of one volume.
func (l Layout) ViewDir(volumeID, podUID string) string {
	return filepath.Join(l.Root, "views", volumeID, podUID)
}

// ViewRecord is the record kept beside a view (outside the bind-mounted
// directory, so the pod never sees it).
func (l Layout) ViewRecord(volumeID, podUID string) string {
	return filepath.Join(l.Root, "views", volumeID, podUID+".json")
}
