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

// NodeGetVolumeStats reports the filesystem under the view (bytes and
// inodes) and the volume's condition (see condition).
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
	bsize := st.Bsize
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{{
			Unit:  csi.VolumeUsage_BYTES,
			Total: int64(st.Blocks) * bsize, Available: int64(st.Bavail) * bsize, Used: int64(st.Blocks-st.Bfree) * bsize, //nolint:gosec // G115: block counts fit in int64
		}, {
			Unit:  csi.VolumeUsage_INODES,
			Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree), //nolint:gosec // G115: inode counts fit in int64
		}},
		VolumeCondition: d.condition(pub),
	}, nil
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
func (d *Driver) condition(pub publishRecord) *csi.VolumeCondition {
	abnormal := func(format string, args ...any) *csi.VolumeCondition {
		return &csi.VolumeCondition{Abnormal: true, Message: fmt.Sprintf(format, args...)}
	}
	info, err := d.views(pub.Medium).Get(pub.VolumeID, pub.PodUID)
	switch {
	case errors.Is(err, cache.ErrNoView):
		return abnormal("the view of pod %s is gone", pub.PodUID)
	case err != nil:
		return abnormal("cannot read the view: %v", err)
	case info.Current == "":
		return abnormal("the view's current link is missing or dangling")
	case !d.stored(pub.Medium, info.Channel, info.Current):
		return abnormal("release %s/%s is missing from the node's store", info.Channel, info.Current)
	}
	rel, err := d.manifestOf(info.Channel, info.Current)
	if err != nil {
		return abnormal("release %s/%s: %v", info.Channel, info.Current, err)
	}
	tree := filepath.Join(info.Path, "releases", info.Current)
	for _, ds := range rel.Datasets {
		for _, f := range ds.Manifest.Files {
			fi, err := os.Stat(filepath.Join(tree, ds.Name, filepath.FromSlash(f.Path)))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return abnormal("release %s/%s: %s/%s is missing", info.Channel, info.Current, ds.Name, f.Path)
			case err != nil:
				return abnormal("release %s/%s: %s/%s: %v", info.Channel, info.Current, ds.Name, f.Path, err)
			case fi.Size() != f.Size:
				return abnormal("release %s/%s: %s/%s has %d bytes, the manifest says %d",
					info.Channel, info.Current, ds.Name, f.Path, fi.Size(), f.Size)
			}
		}
	}
	return &csi.VolumeCondition{Message: fmt.Sprintf("serving release %s/%s", info.Channel, info.Current)}
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
