package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

func (a *app) releaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "release",
		Short: "List, show, compare and remove a channel's releases",
		Args:  noArgs,
		RunE:  helpOnly,
	}
	cmd.AddCommand(a.releaseListCmd(), a.releaseShowCmd(), a.releaseDiffCmd(), a.releaseRmCmd())
	return cmd
}

func (a *app) releaseListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls CHANNEL",
		Aliases: []string{"list"},
		Short:   "List a channel's releases in publish order",
		Args:    exactArgs("CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				// The channel detail carries the head, which the table marks.
				d, err := cl.GetChannel(ctx, args[0])
				if err != nil {
					return err
				}
				rels := d.Releases
				if rels == nil {
					rels = []release.Summary{}
				}
				return a.render(api.ReleaseList{Releases: rels}, func(w io.Writer) {
					releaseTable(w, rels, d.Channel.Head)
				})
			})
		},
	}
}

// releaseTable lists releases with their sizes, marking the head.
func releaseTable(w io.Writer, rels []release.Summary, head string) {
	if len(rels) == 0 {
		fmt.Fprintln(w, "(no releases)")
		return
	}
	row(w, "SEQ", "VERSION", "DATASETS", "FILES", "SIZE", "CREATED", "")
	for _, r := range rels {
		mark := ""
		if r.Version == head {
			mark = "HEAD"
		}
		row(w, r.Seq, r.Version, len(r.Datasets), r.Files, humanBytes(r.Bytes), formatTime(r.CreatedAt), mark)
	}
}

func (a *app) releaseShowCmd() *cobra.Command {
	var manifest bool
	cmd := &cobra.Command{
		Use:   "show CHANNEL VERSION",
		Short: "Show a release: datasets with their sources, file counts and sizes",
		Args:  exactArgs("CHANNEL", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				if manifest {
					return a.showManifest(ctx, cl, args[0], args[1])
				}
				s, err := cl.GetRelease(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return a.render(s, func(w io.Writer) { releaseSummary(w, s) })
			})
		},
	}
	cmd.Flags().BoolVar(&manifest, "manifest", false, "print the full manifest: every file with size, ETag and checksum")
	return cmd
}

func (a *app) showManifest(ctx context.Context, cl *client.Client, channel, version string) error {
	rel, err := cl.GetManifest(ctx, channel, version)
	if err != nil {
		return err
	}
	return a.render(rel, func(w io.Writer) {
		releaseSummary(w, rel.Summarize())
		for _, d := range rel.Datasets {
			fmt.Fprintf(w, "\nDATASET %s (%s)\n", safe(d.Name), safe(d.Source))
			manifestTable(w, d.Manifest)
		}
	})
}

func releaseSummary(w io.Writer, s release.Summary) {
	fmt.Fprintf(w, "Channel:\t%s\n", safe(s.Channel))
	fmt.Fprintf(w, "Version:\t%s\n", safe(s.Version))
	fmt.Fprintf(w, "Seq:\t%d\n", s.Seq)
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(s.CreatedAt))
	fmt.Fprintf(w, "Publisher:\t%s\n", safe(orDash(s.Publisher)))
	fmt.Fprintf(w, "Size:\t%s, %s\n", plural(s.Files, "file"), humanBytes(s.Bytes))
	fmt.Fprintln(w)
	datasetTable(w, s.Datasets)
}

func datasetTable(w io.Writer, ds []release.DatasetSummary) {
	row(w, "DATASET", "FILES", "SIZE", "SOURCE")
	for _, d := range ds {
		row(w, d.Name, d.Files, humanBytes(d.Bytes), d.Source)
	}
}

func manifestTable(w io.Writer, m release.Manifest) {
	row(w, "PATH", "SIZE", "ETAG", "CHECKSUM")
	for _, f := range m.Files {
		sum := "-"
		if f.Checksum != nil {
			sum = f.Checksum.Algorithm + ":" + f.Checksum.Value
		}
		row(w, f.Path, f.Size, orDash(f.ETag), sum)
	}
}
