package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// The node's own records, beside the cache's directories:
//
//	<root>/staging/<volume-id>.json        a staged volume: its resolved attributes and release
//	<root>/publish/<sha256(target)>.json    a published target: which view is mounted there
//
// They are all the state the node service has, so a restarted plugin
// answers unpublish, unstage and stats for what it did before.
const (
	stagingDir = "staging"
	publishDir = "publish"
)

// stageRecord is what NodeStageVolume resolved.
type stageRecord struct {
	VolumeID string      `json:"volumeID"`
	Attrs    volumeAttrs `json:"attrs"`
	// Version is the release made present at stage time (wire name
	// "release", as written by earlier plugins).
	Version string `json:"release"`
	// Identity is which publish of Version it was (release.Identity); zero
	// when the manager did not say, and in records written before.
	Identity    release.Identity `json:"identity,omitzero"`
	StagingPath string           `json:"stagingPath,omitempty"`
	// Ephemeral: an inline volume, staged by its publish and unstaged by
	// its unpublish.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// Credentials is the ID of the S3 credentials that staged the volume
	// and were proved to read Release ("node" for the node's own; empty in
	// records older than per-volume credentials, which all are the node's).
	// Never the credentials themselves: they stay in memory.
	Credentials string `json:"credentials,omitempty"`
}

// credentials is the ID of the staging credentials.
func (r stageRecord) credentials() string {
	if r.Credentials == "" {
		return source.NodeCredentials
	}
	return r.Credentials
}

// publishRecord ties a target path to its view.
type publishRecord struct {
	VolumeID   string `json:"volumeID"`
	PodUID     string `json:"podUID"`
	Medium     string `json:"medium"`
	TargetPath string `json:"targetPath"`
}

// StagedChannels names the channels of the volumes staged on this node.
// The node agent keeps their releases even when its manager does not know
// the channel: a volume whose own manager is another one stages channels
// the node's manager has never heard of.
func (d *Driver) StagedChannels() (map[string]bool, error) {
	dir := filepath.Join(d.opts.Cache.Layout().Root, stagingDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("driver: list staged volumes in %s: %w", dir, err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !strings.HasSuffix(e.Name(), ".json") {
			continue // a record's temp file
		}
		var rec stageRecord
		if _, err := readRecord(filepath.Join(dir, e.Name()), &rec); err != nil {
			return nil, err
		}
		out[rec.Attrs.Channel] = true
	}
	return out, nil
}

func (d *Driver) stagePath(volumeID string) string {
	return filepath.Join(d.opts.Cache.Layout().Root, stagingDir, volumeID+".json")
}

func (d *Driver) publishPath(target string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(target)))
	return filepath.Join(d.opts.Cache.Layout().Root, publishDir, hex.EncodeToString(sum[:16])+".json")
}

// readRecord decodes a record; found is false when there is none.
func readRecord(path string, v any) (found bool, err error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("driver: read %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("driver: record %s is damaged: %w", path, err)
	}
	return true, nil
}

// writeRecord replaces a record crash-safely:
//  1. write a temp file beside it and fsync it;
//  2. rename it over the record;
//  3. fsync the directory, so the rename survives a crash.
func writeRecord(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("driver: record directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("driver: write %s: %w", path, err)
	}
	_, err = tmp.Write(raw) // (1)
	err = errors.Join(err, tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path) // (2)
	}
	if err == nil {
		err = syncDir(dir) // (3)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("driver: write %s: %w", path, err), removeIfExists(tmp.Name()))
	}
	return nil
}

// removeRecord removes a record if present and fsyncs its directory.
func removeRecord(path string) error {
	if err := removeIfExists(path); err != nil {
		return fmt.Errorf("driver: remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
