package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// dryRunResult is what `publish --dry-run` prints with -o json/yaml.
type dryRunResult struct {
	DryRun  bool            `json:"dryRun"`
	Release release.Summary `json:"release"`
	Head    string          `json:"head,omitempty"`
	Diff    release.Diff    `json:"diff"`
}

// dryRun prints the release that would be published and its difference
// from the head, and publishes nothing.
func (a *app) dryRun(ctx context.Context, cl *client.Client, d api.ChannelDetail, rel release.Release) error {
	var head release.Release
	if d.Channel.Head != "" {
		rctx, cancel := a.request(ctx)
		defer cancel()
		var err error
		if head, err = cl.GetManifest(rctx, d.Channel.Name, d.Channel.Head); err != nil {
			return err
		}
	}
	res := dryRunResult{DryRun: true, Release: rel.Summarize(), Head: d.Channel.Head, Diff: release.DiffReleases(head, rel)}
	return a.render(res, func(w io.Writer) {
		r := res.Release
		fmt.Fprintf(w, "dry run: would publish %s/%s: %s, %s (nothing published)\n", r.Channel, r.Version, plural(r.Files, "file"), humanBytes(r.Bytes))
		datasetTable(w, r.Datasets)
		fmt.Fprintf(w, "\ncompared with the head %s:\n", orDash(res.Head))
		diffTable(w, res.Diff)
	})
}

// diffTable prints a Diff: datasets added and removed, then per dataset
// the files added, removed and changed with the sizes.
func diffTable(w io.Writer, d release.Diff) {
	if len(d.DatasetsAdded) > 0 {
		fmt.Fprintf(w, "datasets added: %s\n", listOrDash(d.DatasetsAdded))
	}
	if len(d.DatasetsRemoved) > 0 {
		fmt.Fprintf(w, "datasets removed: %s\n", listOrDash(d.DatasetsRemoved))
	}
	row(w, "DATASET", "ADDED", "REMOVED", "CHANGED", "UNCHANGED", "SIZE")
	for _, ds := range d.Datasets {
		row(w, ds.Name, len(ds.Added), len(ds.Removed), len(ds.Changed), ds.Unchanged,
			humanBytes(ds.BytesFrom)+" -> "+humanBytes(ds.BytesTo))
	}
	for _, ds := range d.Datasets {
		for _, set := range []struct {
			mark  string
			paths []string
		}{{"+", ds.Added}, {"-", ds.Removed}, {"~", ds.Changed}} {
			for _, p := range set.paths {
				fmt.Fprintf(w, "%s %s/%s\n", set.mark, ds.Name, safe(p))
			}
		}
	}
	if d.Empty() {
		fmt.Fprintln(w, "no difference")
	}
}

func listOrDash(names []string) string { return orDash(strings.Join(names, ", ")) }

func (a *app) releaseDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CHANNEL A B",
		Short: "Show how release B differs from release A: datasets and files added, removed, changed",
		Args:  exactArgs("CHANNEL", "A", "B"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				from, err := cl.GetManifest(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				to, err := cl.GetManifest(ctx, args[0], args[2])
				if err != nil {
					return err
				}
				d := release.DiffReleases(from, to)
				return a.render(d, func(w io.Writer) {
					fmt.Fprintf(w, "%s/%s -> %s\n", args[0], d.From, d.To)
					diffTable(w, d)
				})
			})
		},
	}
}
