package images

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The platform of every image: the one the binaries are cross-built for.
const (
	OS   = "linux"
	Arch = "amd64"
)

// Spec is one image: a single-layer root file system and its run config.
type Spec struct {
	File   string    // the tarball's name in the output directory
	Ref    string    // the tag it is loaded under, ghcr.io/hydra-csi/hydra-csi:v1
	Layer  *Layer    // the root file system
	Config v1.Config // user, entrypoint, env, labels
}

// Result is one written tarball.
type Result struct {
	Path   string  // where it was written
	Ref    string  // the tag in its manifest.json
	Digest v1.Hash // the image's manifest digest (what a registry would serve)
	ID     v1.Hash // its config digest: the image ID docker and ctr's content show
	Size   int64   // the tarball's size in bytes
}

// Image assembles s as an image: its layer on an empty base, the config
// stamped with Epoch and the platform, so its digest depends only on s.
func (s Spec) Image() (v1.Image, error) {
	layer, err := s.Layer.v1Layer()
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "hack/images", Comment: s.Ref},
	})
	if err != nil {
		return nil, fmt.Errorf("images: %s: append the layer: %w", s.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("images: %s: read the config: %w", s.Ref, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = OS, Arch
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = s.Config
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("images: %s: set the config: %w", s.Ref, err)
	}
	return img, nil
}

// Write saves s as a docker-archive tarball dir/s.File (manifest.json with
// Config, RepoTags and Layers; the config; one gzipped layer), the shape
// `ctr -n k8s.io images import` and `docker load` read.
//
//  1. Assemble the image and compute its digest.
//  2. Write the tarball under a temp name in dir.
//  3. Rename it into place: a tarball is whole or absent.
func Write(dir string, s Spec) (Result, error) {
	tag, err := name.NewTag(s.Ref)
	if err != nil {
		return Result{}, fmt.Errorf("images: tag %q: %w", s.Ref, err)
	}
	// (1)
	img, err := s.Image()
	if err != nil {
		return Result{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("images: %s: digest: %w", s.Ref, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return Result{}, fmt.Errorf("images: %s: config digest: %w", s.Ref, err)
	}
	// (2)
	final := filepath.Join(dir, s.File)
	tmp := final + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		_ = os.Remove(tmp)
		return Result{}, fmt.Errorf("images: write %s: %w", final, err)
	}
	// (3)
	if err := os.Rename(tmp, final); err != nil {
		return Result{}, fmt.Errorf("images: write %s: %w", final, err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return Result{}, fmt.Errorf("images: write %s: %w", final, err)
	}
	return Result{Path: final, Ref: tag.String(), Digest: digest, ID: id, Size: fi.Size()}, nil
}
