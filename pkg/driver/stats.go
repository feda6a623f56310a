package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/release"
)

// NodeGetVolumeStats reports the volume's usage and condition (see
// condition). Used is the view's own: the bytes and files of the release
// it serves, as its manifest lists them (a view's files are hardlinks of
// the store's, so they are these bytes and no more). Total and Available
// are the filesystem's under the view: what the node's store has room
// for, which the next release's download needs. Without a readable
// release, Used falls back to the filesystem's.
func (d *Driver) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	if err := checkVolumeID(req.GetVolumeId()); err != nil {
		return nil, err
	}
	path := req.GetVolumePath()
	if err := d.checkVolumePath(path); err != nil {
		return nil, err
	}
	var pub publishRecord
	found, err := readRecord(d.publishPath(path), &pub)
	if err != nil {
		return nil, err
	}
	if !found || pub.VolumeID != req.GetVolumeId() {
		return nil, fmt.Errorf("driver: volume %s: %w: not published at volume_path %s", req.GetVolumeId(), errNotFound, path)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("driver: volume %s: %w: volume_path %s: %w", req.GetVolumeId(), errNotFound, path, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("driver: statfs %s: %w", path, err)
	}
	cond, rel := d.condition(pub)
	return &csi.NodeGetVolumeStatsResponse{Usage: usage(st, rel), VolumeCondition: cond}, nil
}

// usage is the answer's bytes and inodes: Used from rel when there is one
// (see NodeGetVolumeStats), the rest from the filesystem.
func usage(st unix.Statfs_t, rel *release.Release) []*csi.VolumeUsage {
	bsize := st.Bsize
	bytes := &csi.VolumeUsage{
		Unit:  csi.VolumeUsage_BYTES,
		Total: int64(st.Blocks) * bsize, Available: int64(st.Bavail) * bsize, Used: int64(st.Blocks-st.Bfree) * bsize, //nolint:gosec // G115: block counts fit in int64
	}
	inodes := &csi.VolumeUsage{
		Unit:  csi.VolumeUsage_INODES,
		Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree), //nolint:gosec // G115: inode counts fit in int64
	}
	if rel != nil {
		s := rel.Summarize()
		bytes.Used, inodes.Used = s.Bytes, int64(s.Files)
	}
	return []*csi.VolumeUsage{bytes, inodes}
}

// checkVolumePath confines volume_path like the paths of publish, with
// one difference: a relative path (no NUL) is answered NotFound, as
// csi-sanity expects. It names no place in this process's file system, so
// no volume can be published there, and nothing at it is ever touched.
func (d *Driver) checkVolumePath(path string) error {
	switch {
	case path == "":
		return invalid("volume_path", "", "is required")
	case !filepath.IsAbs(path) && !strings.ContainsRune(path, 0):
		return fmt.Errorf("driver: volume_path %q: %w: not an absolute path, so no volume is published there", path, errNotFound)
	}
	return d.paths.check("volume_path", path)
}

// condition is a cheap health check of a view, run at each stats call
// (kubelet's default is every minute):
//   - the view still exists and `current` points at a release tree;
//   - that release is still complete in the store of its tier;
//   - every file of the release's manifest is in the view with its size
//     (one stat per file; no bytes are read: a full re-verification is a
//     download's job).
//
// It also returns the release the view serves, nil when it cannot be read.
func (d *Driver) condition(pub publishRecord) (*csi.VolumeCondition, *release.Release) {
	abnormal := func(format string, args ...any) (*csi.VolumeCondition, *release.Release) {
		return &csi.VolumeCondition{Abnormal: true, Message: fmt.Sprintf(format, args...)}, nil
	}
	info, err := d.tiers.Views(pub.Medium).Get(pub.VolumeID, pub.PodUID)
	switch {
	case errors.Is(err, cache.ErrNoView):
		return abnormal("the view of pod %s is gone", pub.PodUID)
	case err != nil:
		return abnormal("cannot read the view: %v", err)
	case info.Current == "":
		return abnormal("the view's current link is missing or dangling")
	case !d.tiers.StoredAs(pub.Medium, info.Channel, info.Current, release.Identity{}):
		return abnormal("release %s/%s is missing from the node's store", info.Channel, info.Current)
	}
	rel, err := d.manifestOf(info.Channel, info.Current)
	if err != nil {
		return abnormal("release %s/%s: %v", info.Channel, info.Current, err)
	}
	// From here on the release is known: a damaged view still serves it.
	damaged := func(format string, args ...any) (*csi.VolumeCondition, *release.Release) {
		cond, _ := abnormal(format, args...)
		return cond, &rel
	}
	tree := filepath.Join(info.Path, "releases", info.Current)
	for _, ds := range rel.Datasets {
		for _, f := range ds.Manifest.Files {
			fi, err := os.Stat(filepath.Join(tree, ds.Name, filepath.FromSlash(f.Path)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return damaged("release %s/%s: %s/%s is missing", info.Channel, info.Current, ds.Name, f.Path)
			case err != nil:
				return damaged("release %s/%s: %s/%s: %v", info.Channel, info.Current, ds.Name, f.Path, err)
			case fi.Size() != f.Size:
				return damaged("release %s/%s: %s/%s has %d bytes, the manifest says %d",
					info.Channel, info.Current, ds.Name, f.Path, fi.Size(), f.Size)
			}
		}
	}
	return &csi.VolumeCondition{Message: fmt.Sprintf("serving release %s/%s", info.Channel, info.Current)}, &rel
}

// manifestOf reads the manifest the cache recorded when it installed a
// release (<root>/meta/<channel>/<version>.json, shared by both tiers).
func (d *Driver) manifestOf(channel, version string) (release.Release, error) {
	raw, err := os.ReadFile(d.opts.Cache.Layout().MetaFile(channel, version))
	if err != nil {
		return release.Release{}, fmt.Errorf("manifest record: %w", err)
	}
	var rel release.Release
	if err := json.Unmarshal(raw, &rel); err != nil {
		return release.Release{}, fmt.Errorf("manifest record: %w", err)
	}
	return rel, nil
}
