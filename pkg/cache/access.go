package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

// Access control over a store that every volume of the node shares.
//
// Volumes may bring their own S3 credentials (CSI secrets); releases are
// downloaded once per node, with whichever credentials asked first. So
// presence in store/ proves nothing about a given volume's right to read a
// release: each volume's credentials must prove it themselves (Authorize)
// before the volume gets a view of it.
//
// The proof is one ranged GET of the first byte of every non-empty object
// of the manifest's s3:// datasets, with If-Match on the manifest's ETag:
// the request a download makes, so it needs the same permissions
// (s3:GetObject, and kms:Decrypt for SSE-KMS objects, which a HEAD would
// not exercise), object by object, since bucket policies and ACLs may
// differ per key. Empty objects have no bytes to protect (their names and
// sizes are in the manifest, which any node token reads). file:// datasets
// are read by the node itself: S3 credentials do not apply to them.
// Successful proofs are kept per (credentials, release) for the life of
// the process; failures are not kept, so a fixed policy works at once.
//
// The node's own credentials need no proof for a release they fetched
// entirely themselves, which is all a store held before volumes had
// credentials. A release to which a volume's credentials contributed bytes
// is marked (meta/<channel>/<version>.volume-fetched) from the start of
// its download to its removal; a download with the node's credentials
// never hardlinks files from a marked release. A marked release is proved
// for the node's credentials like for any other, and a successful proof
// clears the mark (the node then reads it all, also after a restart).

const (
	volumeFetchedSuffix = ".volume-fetched"
	// volumeFetchedName marks a download in tmp/ to which a volume's
	// credentials contributed.
	volumeFetchedName = "volume-fetched"
)

// proof is one check of one (credentials, release), shared by every
// caller, like a download.
type proof struct {
	done chan struct{}
	err  error
}

// credentialedReader is a Reader that can sign with a volume's
// credentials (source.ReaderMux).
type credentialedReader interface {
	WithCredentials(*source.Credentials) source.Reader
}

// readerFor returns the Reader of creds; nil is the cache's own.
func (c *Cache) readerFor(creds *source.Credentials) (source.Reader, error) {
	if creds == nil {
		return c.reader, nil
	}
	if r, ok := c.reader.(credentialedReader); ok {
		return r.WithCredentials(creds), nil
	}
	return nil, fmt.Errorf("cache: %v: this cache's reader cannot sign with per-volume credentials", creds)
}

// Authorized reports whether creds (nil: the node's own) need no proof to
// read the stored release channel/version: the node's credentials on a
// release they fetched whole, or credentials that Authorize has proved.
// Callers check it before loading the manifest, which only a proof needs
// (decoding a manifest of 1,000 files costs a pod start ~2 ms).
func (c *Cache) Authorized(channel, version string, creds *source.Credentials) bool {
	if creds == nil && !c.volumeFetched(channel, version) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proven[creds.ID()+" "+flightKey(channel, version)]
}

// Authorize returns nil once creds (nil: the node's own) are proved to
// read every object of rel, and an error that names the first object they
// cannot read otherwise (wrapping source.ErrDenied when the store refused
// them). The check runs on its own like a download: when ctx ends, the
// caller returns and the next call finds the result.
func (c *Cache) Authorize(ctx context.Context, rel release.Release, creds *source.Credentials) error {
	if creds == nil && !c.volumeFetched(rel.Channel, rel.Version) {
		return nil
	}
	reader, err := c.readerFor(creds)
	if err != nil {
		return err
	}
	key := creds.ID() + " " + flightKey(rel.Channel, rel.Version)
	c.mu.Lock()
	if c.proven[key] {
		c.mu.Unlock()
		return nil
	}
	p, ok := c.proofs[key]
	if !ok {
		p = &proof{done: make(chan struct{})}
		c.proofs[key] = p
		go c.runProof(p, key, rel, creds, reader) //nolint:gosec // G118: the proof outlives the call on purpose, like a download
	}
	c.mu.Unlock()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runProof proves and records the result.
func (c *Cache) runProof(p *proof, key string, rel release.Release, creds *source.Credentials, reader source.Reader) {
	log := klog.Background().WithValues("channel", rel.Channel, "release", rel.Version, "credentials", creds.ID())
	err := c.prove(context.Background(), rel, creds, reader)
	if err == nil && creds == nil {
		err = c.markVolumeFetched(rel.Channel, rel.Version, false)
	}
	c.mu.Lock()
	delete(c.proofs, key)
	if err == nil {
		c.proven[key] = true
	}
	c.mu.Unlock()
	if err != nil {
		log.V(2).Info("credentials cannot read the release", "err", err.Error())
	} else {
		log.V(4).Info("credentials can read the release")
	}
	p.err = err
	close(p.done)
}

// prove reads the first byte of every non-empty object of rel's s3://
// datasets, under the cache's request budget.
func (c *Cache) prove(ctx context.Context, rel release.Release, creds *source.Credentials, reader source.Reader) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cap(c.requests))
	for _, ds := range rel.Datasets {
		src, err := release.ParseSource(ds.Source)
		if err != nil {
			return fmt.Errorf("cache: release %s/%s: dataset %s: %w", rel.Channel, rel.Version, ds.Name, err)
		}
		if src.Scheme != release.SchemeS3 {
			continue
		}
		for _, f := range ds.Manifest.Files {
			if f.Size == 0 {
				continue
			}
			g.Go(func() error {
				if !c.acquireRequest(ctx) {
					return ctx.Err()
				}
				defer c.releaseRequest()
				if err := reader.ReadRange(ctx, src, f, 0, 1, io.Discard); err != nil {
					return fmt.Errorf("cache: release %s/%s: %v cannot read %s/%s: %w", rel.Channel, rel.Version, creds, ds.Name, f.Path, err)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// forgetProofs drops the proofs of a release that leaves the store: the
// same version may come back with other content (a channel deleted and
// created again), fetched by others. The caller holds c.mu.
func (c *Cache) forgetProofs(channel, version string) {
	suffix := " " + flightKey(channel, version)
	for key := range c.proven {
		if strings.HasSuffix(key, suffix) {
			delete(c.proven, key)
		}
	}
}

// volumeFetched reports a stored release that the node's credentials did
// not fetch entirely: marked, or without a record (whose origin is
// unknown, e.g. a RAM copy whose disk copy is gone).
func (c *Cache) volumeFetched(channel, version string) bool {
	return fileExists(c.layout.VolumeFetchedFile(channel, version)) || !fileExists(c.layout.MetaFile(channel, version))
}

// markVolumeFetched sets or clears the mark of a release, durably.
func (c *Cache) markVolumeFetched(channel, version string, on bool) error {
	path := c.layout.VolumeFetchedFile(channel, version)
	if on {
		return writeFileAtomic(path, nil)
	}
	if err := removeIfExists(path); err != nil {
		return fmt.Errorf("cache: clear %s: %w", path, err)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
