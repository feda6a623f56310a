package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/cache"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

func (a *app) pullCmd() *cobra.Command {
	var requests int
	cmd := &cobra.Command{
		Use:   "pull CHANNEL[@VERSION] DIR",
		Short: "Download a release into DIR/<dataset>/..., verified; DIR appears only when complete",
		Long: "pull fetches a release (the head, or VERSION) with the node's own downloader: ranged, parallel,\n" +
			"every byte verified against the manifest. It works in a hidden sibling of DIR and renames it\n" +
			"into place at the end; an interrupted pull resumes where it stopped when run again.",
		Args: exactArgs("CHANNEL[@VERSION]", "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pull(cmd, args[0], args[1], requests)
		},
	}
	cmd.Flags().IntVar(&requests, "requests", 16, "concurrent range requests")
	return cmd
}

// parseRef splits CHANNEL[@VERSION] and validates both parts.
func parseRef(ref string) (string, string, error) {
	channel, version, _ := strings.Cut(ref, "@")
	if err := release.ValidateChannelName(channel); err != nil {
		return "", "", err
	}
	if version != "" {
		if err := release.ValidateVersion(version); err != nil {
			return "", "", err
		}
	}
	return channel, version, nil
}

func (a *app) pull(cmd *cobra.Command, ref, dir string, requests int) error {
	channel, version, err := parseRef(ref)
	if err != nil {
		return err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s already exists; pull into a new directory", dir)
	}
	var rel release.Release
	err = a.call(cmd, func(ctx context.Context, cl *client.Client) error {
		rel, err = fetchManifest(ctx, cl, channel, version)
		return err
	})
	if err != nil {
		return err
	}
	work := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".hydra-pull")
	if err := prepareWork(work); err != nil {
		return err
	}
	c, err := cache.New(cache.Options{Root: work, Reader: source.NewReaderMux(source.FetchOptions{Requests: requests}), Requests: requests})
	if err != nil {
		return err
	}
	if err := a.download(cmd, c, rel); err != nil {
		return fmt.Errorf("%w (run the same command again to resume)", err)
	}
	if err := os.Rename(c.Layout().StoreDir(rel.Channel, rel.Version), dir); err != nil {
		return fmt.Errorf("move the release into %s: %w", dir, err)
	}
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("clean %s: %w", work, err)
	}
	s := rel.Summarize()
	fmt.Fprintf(a.stdout, "pulled %s/%s into %s: %d files, %s\n", safe(rel.Channel), safe(rel.Version), safe(dir), s.Files, humanBytes(s.Bytes))
	return nil
}

// prepareWork makes the hidden work directory, or checks the one an
// interrupted pull left. It must be a real directory of this user: the
// pull writes below it and renames out of it, so a symlink planted there
// (in a shared directory such as /tmp) would send the download, and the
// cleanup's RemoveAll, wherever it points.
func prepareWork(work string) error {
	err := os.Mkdir(work, 0o700) // never follows a symlink at work
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the work directory %s: %w", work, err)
	}
	info, err := os.Lstat(work)
	if err != nil {
		return fmt.Errorf("work directory %s: %w", work, err)
	}
	switch st, ok := info.Sys().(*syscall.Stat_t); {
	case info.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("work directory %s is a symlink; refusing to follow it (remove it if it is not yours)", work)
	case !info.IsDir():
		return fmt.Errorf("work directory %s exists and is not a directory; remove it", work)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("work directory %s belongs to uid %d, not to you; remove it", work, st.Uid)
	}
	return nil
}

// fetchManifest gets the release: the given version, else the head.
func fetchManifest(ctx context.Context, cl *client.Client, channel, version string) (release.Release, error) {
	if version == "" {
		d, err := cl.GetChannel(ctx, channel)
		if err != nil {
			return release.Release{}, err
		}
		if d.Channel.Head == "" {
			return release.Release{}, fmt.Errorf("channel %s has no head release yet", channel)
		}
		version = d.Channel.Head
	}
	return cl.GetManifest(ctx, channel, version)
}

// download runs the cache's download and, when stderr is a terminal,
// redraws a progress bar there until it ends.
func (a *app) download(cmd *cobra.Command, c *cache.Cache, rel release.Release) error {
	ctx := cmd.Context()
	done := make(chan error, 1)
	go func() { done <- c.Ensure(ctx, rel) }()
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	total := rel.Summarize().Bytes
	draw := isTerminal(a.stderr)
	for {
		select {
		case err := <-done:
			if err == nil && draw {
				fmt.Fprintf(a.stderr, "\r%s\n", progressBar(total, total))
			}
			if errors.Is(err, context.Canceled) {
				return errors.New("interrupted")
			}
			return err
		case <-ticker.C:
			if !draw {
				continue
			}
			for _, p := range c.Progress() {
				fmt.Fprintf(a.stderr, "\r%s", progressBar(p.BytesDone, p.BytesTotal))
			}
		}
	}
}
