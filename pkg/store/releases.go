package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

// releaseRecord is a release as stored: its summary and where its manifests
// are. Manifests live apart because they can be megabytes, over Consul's
// value limit, while summaries are read on every list.
type releaseRecord struct {
	release.Summary
	Manifest manifestRef `json:"manifest"`
}

// manifestRef locates a release's manifests: Chunks values under
// manifests/<channel>/<version>/<Blob>/, whose concatenation has SHA256.
type manifestRef struct {
	Blob   string `json:"blob"`
	Chunks int    `json:"chunks"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

func releasePrefix(channel string) string       { return prefixReleases + channel + "/" }
func releaseKey(channel, version string) string { return releasePrefix(channel) + version }
func manifestPrefix(channel string) string      { return prefixManifests + channel + "/" }
func blobPrefix(channel, version, blob string) string {
	return manifestPrefix(channel) + version + "/" + blob + "/"
}

// Publish stores a release and, when promote is set and the channel is not
// pinned, moves the head to it. It assigns the release's Seq. A version the
// channel already has gives ErrExists; an unknown channel ErrNotFound.
//
// Algorithm (crash-safe: a release is visible only once step 3 commits):
//  1. Refuse early if the channel is missing or the version taken.
//  2. Write the manifests as new chunks under a fresh blob name; nothing
//     refers to them yet, so a crash here leaves only garbage that
//     SweepManifests removes.
//  3. One transaction: CAS the channel record (next seq, maybe head) and
//     create the release record only if absent. A conflict on the channel
//     means another publisher won the race: re-read and try again.
//  4. On failure, remove the chunks written in step 2.
func (s *Store) Publish(ctx context.Context, rel release.Release, promote bool) (release.Release, bool, error) {
	return s.PublishWith(ctx, rel, PublishOptions{Promote: promote, AllowDatasetChange: true})
}

// PublishOptions say how PublishWith treats the head.
type PublishOptions struct {
	// Promote moves the head to the release unless the channel is pinned.
	Promote bool
	// AllowDatasetChange lets the release's dataset names differ from the
	// head's; without it such a release is refused (a FieldError on
	// "datasets"), checked in the transaction that stores it.
	AllowDatasetChange bool
}

// PublishWith is Publish with options; a promotion is recorded in the
// channel's head history, by rel.Publisher.
func (s *Store) PublishWith(ctx context.Context, rel release.Release, opts PublishOptions) (release.Release, bool, error) {
	if err := rel.Validate(); err != nil {
		return release.Release{}, false, err
	}
	if err := s.checkPublishable(ctx, rel); err != nil { // (1)
		return release.Release{}, false, err
	}
	ref, err := s.writeManifests(ctx, rel) // (2)
	if err != nil {
		return release.Release{}, false, err
	}
	out, promoted, err := s.commitRelease(ctx, rel, ref, opts) // (3)
	if err != nil {
		s.dropBlob(rel.Channel, rel.Version, ref.Blob) // (4)
	}
	return out, promoted, err
}

func (s *Store) checkPublishable(ctx context.Context, rel release.Release) error {
	if _, _, err := s.getChannel(ctx, rel.Channel); err != nil {
		return err
	}
	_, err := s.b.Get(ctx, releaseKey(rel.Channel, rel.Version))
	switch {
	case err == nil:
		return fmt.Errorf("store: release %s/%s: %w", rel.Channel, rel.Version, ErrExists)
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

func (s *Store) commitRelease(ctx context.Context, rel release.Release, ref manifestRef, opts PublishOptions) (release.Release, bool, error) {
	relKey := releaseKey(rel.Channel, rel.Version)
	for range maxCASAttempts {
		rec, version, err := s.getChannel(ctx, rel.Channel)
		if err != nil {
			return release.Release{}, false, err
		}
		ops, err := s.sameDatasets(ctx, rec.Channel, rel, opts)
		if err != nil {
			return release.Release{}, false, err
		}
		rec.NextSeq++
		rel.Seq = rec.NextSeq
		before := rec.Channel
		promoted := opts.Promote && rec.Pinned == ""
		switch {
		case promoted:
			rec.Head = rel.Version
			rec.History.Record(before, rec.Channel, rel.CreatedAt, rel.Publisher, release.CausePublish)
		case opts.Promote:
			// Held by the pin: unpin moves the head here.
			rec.History.PromotedWhilePinned = rel.Version
		}
		rec.UpdatedAt = rel.CreatedAt
		chVal, err := encodeValue(rec)
		if err != nil {
			return release.Release{}, false, err
		}
		relVal, err := encodeValue(releaseRecord{Summary: rel.Summarize(), Manifest: ref})
		if err != nil {
			return release.Release{}, false, err
		}
		err = s.b.Txn(ctx, append(ops,
			Op{Kind: OpPut, Key: channelKey(rel.Channel), Value: chVal, Cond: CondVersion, Version: version},
			Op{Kind: OpPut, Key: relKey, Value: relVal, Cond: CondAbsent},
		))
		var ce *ConflictError
		switch {
		case conflictOn(err, channelKey(rel.Channel)):
			continue
		case conflictOn(err, relKey):
			return release.Release{}, false, fmt.Errorf("store: release %s/%s: %w", rel.Channel, rel.Version, ErrExists)
		case errors.As(err, &ce):
			continue // the head release checked by sameDatasets changed
		case err != nil:
			return release.Release{}, false, err
		}
		return rel, promoted, nil
	}
	return release.Release{}, false, fmt.Errorf("store: channel %s: gave up publishing after %d conflicts: %w", rel.Channel, maxCASAttempts, ErrConflict)
}

// sameDatasets refuses rel when its dataset names differ from the head's
// (unless allowed) and returns a check that the head release is still the
// one compared with. A channel without a head has nothing to compare.
func (s *Store) sameDatasets(ctx context.Context, ch release.Channel, rel release.Release, opts PublishOptions) ([]Op, error) {
	if opts.AllowDatasetChange || ch.Head == "" {
		return nil, nil
	}
	head, headVersion, err := s.getRelease(ctx, ch.Name, ch.Head)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // removed meanwhile; the channel swap will conflict
	}
	if err != nil {
		return nil, err
	}
	if err := release.CheckSameDatasets(head.Summary, rel.Datasets); err != nil {
		return nil, fmt.Errorf("store: release %s/%s: %w", rel.Channel, rel.Version, err)
	}
	return []Op{{Kind: OpCheck, Key: releaseKey(ch.Name, ch.Head), Cond: CondVersion, Version: headVersion}}, nil
}

// writeManifests stores the datasets (with their manifests) as gzip'd JSON
// split into chunks that fit the backend, batched into transactions that
// fit it too.
func (s *Store) writeManifests(ctx context.Context, rel release.Release) (manifestRef, error) {
	data, err := gzipManifests(rel.Datasets)
	if err != nil {
		return manifestRef{}, fmt.Errorf("store: release %s/%s: encode manifests: %w", rel.Channel, rel.Version, err)
	}
	sum := sha256.Sum256(data)
	ref := manifestRef{Blob: newBlobName(rel.CreatedAt), Size: len(data), SHA256: hex.EncodeToString(sum[:])}
	lim := s.b.Limits()
	chunk := min(lim.MaxValueSize, lim.MaxTxnBytes)
	prefix := blobPrefix(rel.Channel, rel.Version, ref.Blob)
	var batch []Op
	batchBytes := 0
	for off := 0; off < len(data) || ref.Chunks == 0; off += chunk {
		part := data[off:min(off+chunk, len(data))]
		if len(batch) == lim.MaxTxnOps || batchBytes+len(part) > lim.MaxTxnBytes {
			if err := s.b.Txn(ctx, batch); err != nil {
				return manifestRef{}, fmt.Errorf("store: release %s/%s: write manifests: %w", rel.Channel, rel.Version, err)
			}
			batch, batchBytes = nil, 0
		}
		batch = append(batch, Op{Kind: OpPut, Key: prefix + chunkName(ref.Chunks), Value: part, Cond: CondAbsent})
		batchBytes += len(part)
		ref.Chunks++
	}
	if err := s.b.Txn(ctx, batch); err != nil {
		return manifestRef{}, fmt.Errorf("store: release %s/%s: write manifests: %w", rel.Channel, rel.Version, err)
	}
	return ref, nil
}

// gzipManifests encodes the datasets as JSON straight into a gzip
// stream, file by file: a million-file manifest is never held as plain
// JSON (the size of the publish body, again), only compressed — about a
// tenth of that. The bytes are those of json.Marshal(datasets), except
// that a missing list is written [] rather than null.
func gzipManifests(datasets []release.Dataset) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	bw := bufio.NewWriterSize(zw, 64<<10)
	if err := writeDatasets(bw, datasets); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeDatasets writes datasets as a JSON array. Each dataset is
// marshalled with no files, and its files are written where its empty
// "files" array was: the JSON of a string cannot contain that key with
// its unescaped quotes, so the last match is the manifest's.
func writeDatasets(w *bufio.Writer, datasets []release.Dataset) error {
	const files = `"files":[`
	_ = w.WriteByte('[') // a bufio.Writer keeps its first error for Flush
	for i, d := range datasets {
		fs := d.Manifest.Files
		d.Manifest.Files = []release.File{}
		shell, err := json.Marshal(d)
		if err != nil {
			return err
		}
		cut := bytes.LastIndex(shell, []byte(files+"]")) + len(files)
		if i > 0 {
			_ = w.WriteByte(',')
		}
		_, _ = w.Write(shell[:cut])
		for j, f := range fs {
			raw, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if j > 0 {
				_ = w.WriteByte(',')
			}
			_, _ = w.Write(raw)
		}
		_, _ = w.Write(shell[cut:])
	}
	return w.WriteByte(']')
}

func chunkName(i int) string { return fmt.Sprintf("%06d", i) }

// newBlobName makes a unique blob name that starts with its creation time,
// so SweepManifests can tell an abandoned blob from one being written now.
func newBlobName(t time.Time) string {
	var r [6]byte
	_, _ = rand.Read(r[:])
	return strconv.FormatInt(t.Unix(), 10) + "-" + hex.EncodeToString(r[:])
}

// dropBlob removes a blob's chunks on a best-effort basis; its own context,
// because it runs after the caller's may have ended.
func (s *Store) dropBlob(channel, version, blob string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = s.b.Txn(ctx, []Op{{Kind: OpDeleteTree, Key: blobPrefix(channel, version, blob)}})
}

func (s *Store) getRelease(ctx context.Context, channel, version string) (releaseRecord, uint64, error) {
	kv, err := s.b.Get(ctx, releaseKey(channel, version))
	if errors.Is(err, ErrNotFound) {
		if _, _, cerr := s.getChannel(ctx, channel); cerr != nil {
			return releaseRecord{}, 0, cerr
		}
		return releaseRecord{}, 0, fmt.Errorf("store: release %s/%s: %w", channel, version, ErrNotFound)
	}
	if err != nil {
		return releaseRecord{}, 0, err
	}
	var rec releaseRecord
	err = decodeValue(kv.Key, kv.Value, &rec)
	return rec, kv.Version, err
}

// GetRelease returns a release's summary.
func (s *Store) GetRelease(ctx context.Context, channel, version string) (release.Summary, error) {
	rec, _, err := s.getRelease(ctx, channel, version)
	return rec.Summary, err
}

// ListReleases returns a channel's releases in publish order.
func (s *Store) ListReleases(ctx context.Context, channel string) ([]release.Summary, error) {
	if _, _, err := s.getChannel(ctx, channel); err != nil {
		return nil, err
	}
	return s.listReleases(ctx, channel)
}

// listReleases is ListReleases without the check that the channel exists
// (an empty list for a channel that does not).
func (s *Store) listReleases(ctx context.Context, channel string) ([]release.Summary, error) {
	kvs, err := s.b.List(ctx, releasePrefix(channel))
	if err != nil {
		return nil, err
	}
	out := make([]release.Summary, 0, len(kvs))
	for _, kv := range kvs {
		var rec releaseRecord
		if err := decodeValue(kv.Key, kv.Value, &rec); err != nil {
			return nil, err
		}
		out = append(out, rec.Summary)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// GetManifest returns the full release, manifests included, checking the
// stored bytes against the digest recorded at publish. Recently read
// manifests are served from memory (see manifestCache): callers must not
// modify the Datasets of what it returns.
func (s *Store) GetManifest(ctx context.Context, channel, version string) (release.Release, error) {
	rec, _, err := s.getRelease(ctx, channel, version)
	if err != nil {
		return release.Release{}, err
	}
	datasets, err := s.manifests.get(rec.Manifest.SHA256, func() ([]release.Dataset, int, error) {
		// Concurrent callers share this read: the first one's cancellation
		// must not fail the others.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), manifestReadTimeout)
		defer cancel()
		return s.readManifest(readCtx, channel, version, rec)
	})
	if err != nil {
		return release.Release{}, err
	}
	return release.Release{Channel: channel, Version: version, Seq: rec.Seq, CreatedAt: rec.CreatedAt, Publisher: rec.Publisher, Datasets: datasets}, nil
}

// readManifest reads, checks and decodes a release's manifest chunks; it
// returns the datasets and the size of the stored (compressed) bytes.
func (s *Store) readManifest(ctx context.Context, channel, version string, rec releaseRecord) ([]release.Dataset, int, error) {
	kvs, err := s.b.List(ctx, blobPrefix(channel, version, rec.Manifest.Blob))
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	for _, kv := range kvs {
		buf.Write(kv.Value)
	}
	sum := sha256.Sum256(buf.Bytes())
	if len(kvs) != rec.Manifest.Chunks || hex.EncodeToString(sum[:]) != rec.Manifest.SHA256 {
		return nil, 0, fmt.Errorf("store: release %s/%s: manifest damaged: %d of %d chunks, digest mismatch=%t",
			channel, version, len(kvs), rec.Manifest.Chunks, hex.EncodeToString(sum[:]) != rec.Manifest.SHA256)
	}
	raw, err := gunzipBytes(buf.Bytes())
	if err != nil {
		return nil, 0, fmt.Errorf("store: release %s/%s: manifest: %w", channel, version, err)
	}
	var datasets []release.Dataset
	if err := json.Unmarshal(raw, &datasets); err != nil {
		return nil, 0, fmt.Errorf("store: release %s/%s: manifest: %w", channel, version, err)
	}
	return datasets, buf.Len(), nil
}

// ErrProtected is returned when deleting the head or the pinned release.
var ErrProtected = errors.New("release is the channel's head or pinned")

// DeleteRelease removes a release and its manifests. It refuses the head
// and the pinned release (ErrProtected) and lets guard refuse others (for
// example releases a node reports in use). The transaction checks that the
// channel did not change since it was read, so a concurrent head move to
// this release wins over the delete.
func (s *Store) DeleteRelease(ctx context.Context, channel, version string, guard func(release.Channel) error) error {
	for range maxCASAttempts {
		ch, chVersion, err := s.getChannel(ctx, channel)
		if err != nil {
			return err
		}
		if ch.Head == version || ch.Pinned == version {
			return fmt.Errorf("store: release %s/%s: %w", channel, version, ErrProtected)
		}
		if guard != nil {
			if err := guard(ch.Channel); err != nil {
				return err
			}
		}
		_, relVersion, err := s.getRelease(ctx, channel, version)
		if err != nil {
			return err
		}
		err = s.b.Txn(ctx, []Op{
			{Kind: OpCheck, Key: channelKey(channel), Cond: CondVersion, Version: chVersion},
			{Kind: OpDelete, Key: releaseKey(channel, version), Cond: CondVersion, Version: relVersion},
			{Kind: OpDeleteTree, Key: manifestPrefix(channel) + version + "/"},
		})
		var ce *ConflictError
		if errors.As(err, &ce) {
			continue
		}
		return err
	}
	return fmt.Errorf("store: release %s/%s: gave up after %d conflicting deletes: %w", channel, version, maxCASAttempts, ErrConflict)
}

// SweepManifests removes manifest blobs that no release refers to and that
// were created before olderThan: leftovers of publishes that crashed or
// lost a race. The age bound keeps it away from a publish in progress. It
// returns how many blobs it removed.
func (s *Store) SweepManifests(ctx context.Context, olderThan time.Time) (int, error) {
	live, err := s.liveBlobs(ctx)
	if err != nil {
		return 0, err
	}
	kvs, err := s.b.List(ctx, prefixManifests)
	if err != nil {
		return 0, err
	}
	removed := map[string]bool{}
	for _, kv := range kvs {
		// manifests/<channel>/<version>/<blob>/<chunk>
		parts := strings.Split(strings.TrimPrefix(kv.Key, prefixManifests), "/")
		if len(parts) != 4 {
			continue
		}
		blobDir := prefixManifests + strings.Join(parts[:3], "/") + "/"
		if live[blobDir] || removed[blobDir] || !blobOlder(parts[2], olderThan) {
			continue
		}
		if err := s.b.Txn(ctx, []Op{{Kind: OpDeleteTree, Key: blobDir}}); err != nil {
			return len(removed), err
		}
		removed[blobDir] = true
	}
	return len(removed), nil
}

func (s *Store) liveBlobs(ctx context.Context) (map[string]bool, error) {
	kvs, err := s.b.List(ctx, prefixReleases)
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		var rec releaseRecord
		if err := decodeValue(kv.Key, kv.Value, &rec); err != nil {
			return nil, err
		}
		live[blobPrefix(rec.Channel, rec.Version, rec.Manifest.Blob)] = true
	}
	return live, nil
}

func blobOlder(blob string, t time.Time) bool {
	secs, _, _ := strings.Cut(blob, "-")
	n, err := strconv.ParseInt(secs, 10, 64)
	return err == nil && time.Unix(n, 0).Before(t)
}
