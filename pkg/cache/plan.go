package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hydra-csi/hydra/pkg/checksum"
	"github.com/hydra-csi/hydra/pkg/release"
)

// plannedFile is one file of a release as the download sees it.
type plannedFile struct {
	idx     int
	dataset string
	src     release.Source
	file    release.File
	// path is where the file is written below tmp/.../data.
	path string
	// parts is how many parts the file is fetched in (0 for an empty file).
	parts int
	// alg is the CRC the parts are hashed with: the manifest's CRC when it
	// has one, so parts combine into the value to verify; else crc64nvme,
	// which still lets a resumed download trust its journal.
	alg string
	// linkFrom, when set, is a stored file with the same identity: the
	// file is hardlinked from it instead of downloaded.
	linkFrom string
}

// name is how errors refer to the file.
func (p plannedFile) name() string { return p.dataset + "/" + p.file.Path }

// plan flattens a release into files, picks hardlink sources, and counts
// parts. A download with the node's credentials (byVolume false) links
// only from releases the node fetched itself, so that what it installs
// unmarked holds only bytes the node's credentials read (access.go).
func (c *Cache) plan(rel release.Release, dataDir string, byVolume bool) ([]plannedFile, error) {
	ids, err := c.identities(rel.Channel, byVolume)
	if err != nil {
		return nil, err
	}
	var files []plannedFile
	for _, ds := range rel.Datasets {
		src, err := release.ParseSource(ds.Source)
		if err != nil {
			return nil, fmt.Errorf("cache: release %s/%s: dataset %s: %w", rel.Channel, rel.Version, ds.Name, err)
		}
		for _, f := range ds.Manifest.Files {
			p := plannedFile{
				idx:     len(files),
				dataset: ds.Name,
				src:     src,
				file:    f,
				path:    filepath.Join(dataDir, ds.Name, filepath.FromSlash(f.Path)),
				parts:   int((f.Size + c.partSize - 1) / c.partSize),
				alg:     partAlgorithm(f),
			}
			p.linkFrom = ids[identityOf(src, f)]
			files = append(files, p)
		}
	}
	return files, nil
}

func partAlgorithm(f release.File) string {
	if f.Checksum != nil && checksum.Combinable(f.Checksum.Algorithm) {
		return f.Checksum.Algorithm
	}
	return release.ChecksumCRC64NVME
}

// identity says when two files of a channel's releases hold the same bytes:
// the same checksum (and size), or else the same object — source key, ETag
// and size. Files without either are never shared.
func identityOf(src release.Source, f release.File) string {
	if f.Checksum != nil {
		return fmt.Sprintf("sum:%s:%s:%d", f.Checksum.Algorithm, f.Checksum.Value, f.Size)
	}
	if f.ETag != "" {
		return fmt.Sprintf("obj:%s%s:%s:%d", src.String(), f.Path, f.ETag, f.Size)
	}
	return ""
}

// identities maps the identity of every file in the channel's stored
// releases to its path in store/, from the releases' recorded manifests;
// releases that volumes' credentials fetched count only when
// withVolumeFetched.
func (c *Cache) identities(channel string, withVolumeFetched bool) (map[string]string, error) {
	ids := map[string]string{}
	versions, err := c.storedVersions(channel)
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		if !withVolumeFetched && c.volumeFetched(channel, v) {
			continue
		}
		rel, err := c.readMeta(channel, v)
		if err != nil {
			continue // a release without a readable record is not shared
		}
		for _, ds := range rel.Datasets {
			src, err := release.ParseSource(ds.Source)
			if err != nil {
				continue
			}
			for _, f := range ds.Manifest.Files {
				if id := identityOf(src, f); id != "" {
					ids[id] = filepath.Join(c.layout.StoreDir(channel, v), ds.Name, filepath.FromSlash(f.Path))
				}
			}
		}
	}
	delete(ids, "")
	return ids, nil
}

// storedVersions lists the versions present in store/ for a channel.
func (c *Cache) storedVersions(channel string) ([]string, error) {
	entries, err := os.ReadDir(c.layout.ChannelStoreDir(channel))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cache: list stored releases of %s: %w", channel, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && release.ValidateVersion(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Manifest returns the manifest recorded when a release was installed
// (meta/<channel>/<version>.json).
func (c *Cache) Manifest(channel, version string) (release.Release, error) {
	rel, err := c.readMeta(channel, version)
	if errors.Is(err, os.ErrNotExist) {
		return rel, fmt.Errorf("cache: release %s/%s has no record: %w", channel, version, ErrNotStored)
	}
	return rel, err
}

// readMeta reads the manifest recorded when a release was installed.
func (c *Cache) readMeta(channel, version string) (release.Release, error) {
	raw, err := os.ReadFile(c.layout.MetaFile(channel, version))
	if err != nil {
		return release.Release{}, err
	}
	var rel release.Release
	if err := json.Unmarshal(raw, &rel); err != nil {
		return release.Release{}, fmt.Errorf("cache: release record %s/%s: %w", channel, version, err)
	}
	return rel, nil
}
