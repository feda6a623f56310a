package driver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DefaultKubeletDir is kubelet's default --root-dir: the pod and plugin
// directories that hold every staging and target path.
const DefaultKubeletDir = "/var/lib/kubelet"

// pathGuard confines the paths a CSI request names (staging_target_path,
// target_path, volume_path). The plugin runs as root and mounts: without
// it, whoever reaches the socket could have a view bind-mounted over /etc,
// or over the node's store that every pod reads from.
//
// A path is accepted when it is absolute, clean of NUL and '..' elements,
// and, once the symbolic links of its longest existing prefix are resolved,
// strictly below the kubelet directory and outside every store root. The
// part that does not exist yet holds no link to follow; a dangling link is
// refused, since mkdir or mount would follow it later.
//
// The check narrows a race rather than closing it: a link swapped in after
// the check would be followed. Only root and kubelet can write below the
// kubelet directory, and they can mount anyway.
type pathGuard struct {
	// dir is the kubelet directory as configured (for messages); root is it
	// resolved.
	dir, root string
	// stores are the store roots (disk and RAM), resolved.
	stores []string
}

// newPathGuard resolves the kubelet directory and the store roots once; a
// directory that does not exist yet is resolved as far as it exists.
func newPathGuard(kubeletDir string, storeRoots ...string) (pathGuard, error) {
	if !filepath.IsAbs(kubeletDir) {
		return pathGuard{}, fmt.Errorf("driver: kubelet directory %q: must be an absolute path", kubeletDir)
	}
	root, err := resolveExisting(filepath.Clean(kubeletDir))
	if err != nil {
		return pathGuard{}, fmt.Errorf("driver: kubelet directory %s: %w", kubeletDir, err)
	}
	g := pathGuard{dir: kubeletDir, root: root}
	for _, s := range storeRoots {
		if s == "" {
			continue
		}
		r, err := resolveExisting(filepath.Clean(s))
		if err != nil {
			return pathGuard{}, fmt.Errorf("driver: store root %s: %w", s, err)
		}
		g.stores = append(g.stores, r)
	}
	return g, nil
}

// check refuses a path outside the confinement; the error is
// InvalidArgument and names field.
func (g pathGuard) check(field, p string) error {
	if err := checkPath(field, p); err != nil {
		return err
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return invalid(field, p, "must not contain '..' elements")
	}
	resolved, err := resolveExisting(filepath.Clean(p))
	if err != nil {
		return invalid(field, p, "cannot be resolved: %v", err)
	}
	if resolved == g.root || !within(resolved, g.root) {
		return invalid(field, p, "must be below the kubelet directory %s (--kubelet-dir); it resolves to %s", g.dir, resolved)
	}
	for _, s := range g.stores {
		if within(resolved, s) || within(s, resolved) {
			return invalid(field, p, "must not be the node's store %s or contain it", s)
		}
	}
	return nil
}

// within reports whether p is root or below it; both are clean and
// absolute.
func within(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of the clean absolute path p (filepath.EvalSymlinks) and appends
// the rest, which does not exist and so holds no link.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// cur is there but does not resolve: a link to nowhere, which
		// mkdir or mount would follow once its target appears.
		if _, lerr := os.Lstat(cur); lerr == nil {
			return "", fmt.Errorf("%s is a dangling symbolic link", cur)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
