package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/api"
	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
	"github.com/hydra-csi/hydra/pkg/source"
)

func (a *app) publishCmd() *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish CHANNEL --dataset NAME=URI ... [--version V|auto] [-f TEMPLATE.yaml] [--no-promote] [--wait]",
		Short: "Publish a release: list each dataset's source into a manifest and store it in the channel",
		Long: "publish lists every dataset's source (s3://BUCKET/PREFIX/ or file:///DIR/) into a manifest\n" +
			"and stores the release. A {VERSION} in a URI is the version placeholder: --version auto\n" +
			"(the default when a URI has one) picks the newest version present under every such URI;\n" +
			"an explicit --version V fills it in. Without a placeholder the version defaults to the\n" +
			"current time, YYYY-MM-DDThh-mm-ss (UTC).\n\n" +
			"A template file (-f) holds version, datasets [{name, uri, marker}], requireMarker and\n" +
			"noPromote; flags override and extend it.\n\n" +
			"Exit codes: 0 published, 3 nothing new (--version auto), 4 not found, 5 refused as\n" +
			"invalid (incomplete dataset, changed dataset set), 6 unauthorized, 7 manager\n" +
			"unreachable, 8 conflict (version exists).",
		Args: exactArgs("CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.versionSet = cmd.Flags().Changed("version")
			f.noPromoteSet = cmd.Flags().Changed("no-promote")
			spec, err := buildSpec(f)
			if err != nil {
				return err
			}
			return a.publish(cmd, args[0], spec, f)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.datasets, "dataset", nil, "NAME=URI of a dataset (repeatable)")
	fs.StringVar(&f.version, "version", "", "release version, or auto (default: auto with a {VERSION} placeholder, else the current time)")
	fs.StringVarP(&f.template, "file", "f", "", "YAML template: version, datasets [{name, uri}], noPromote")
	fs.BoolVar(&f.noPromote, "no-promote", false, "store the release without moving the head to it")
	fs.BoolVar(&f.wait, "wait", false, "after publishing, wait until every node serving the channel has the release ready")
	fs.StringVar(&f.marker, "require-marker", "", "key (such as _SUCCESS) that must exist under every dataset's prefix; auto passes over versions without it")
	fs.StringArrayVar(&f.markers, "dataset-marker", nil, "NAME=KEY: the marker of one dataset (repeatable)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "list and check, print what would be published and how it differs from the head; publish nothing")
	fs.BoolVar(&f.allowDatasetChange, "allow-dataset-change", false, "publish even though the dataset names differ from the head's")
	return cmd
}

// publish resolves the version, lists every dataset and stores the release.
// The checks that need no listing come first: a listing of a large prefix
// takes minutes, and its result is wasted if the manager then refuses.
func (a *app) publish(cmd *cobra.Command, channel string, spec publishSpec, f publishFlags) error {
	if err := release.ValidateChannelName(channel); err != nil {
		return err
	}
	cl, err := a.client(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	d, err := a.channelDetail(ctx, cl, channel)
	if err != nil {
		return err
	}
	rel := release.Release{Channel: channel}
	rel.Version, rel.Datasets, err = a.resolveRelease(ctx, spec, d)
	if err != nil {
		return err
	}
	// Checked here so that a bad manifest is reported before a large upload.
	if err := rel.Validate(); err != nil {
		return err
	}
	if !f.allowDatasetChange {
		if err := release.CheckSameDatasets(headSummary(d), rel.Datasets); err != nil {
			return fmt.Errorf("release %s/%s: %w", channel, rel.Version, err)
		}
	}
	if f.dryRun {
		return a.dryRun(ctx, cl, d, rel)
	}
	resp, err := a.sendPublish(ctx, cl, rel, api.PublishRequest{NoPromote: spec.noPromote, AllowDatasetChange: f.allowDatasetChange})
	if err != nil {
		return err
	}
	if err := a.render(resp, func(w io.Writer) { publishedTable(w, resp) }); err != nil {
		return err
	}
	if !f.wait {
		return nil
	}
	return a.waitAfterPublish(ctx, cl, resp)
}

// headSummary is the head release among d's releases (zero without head).
func headSummary(d api.ChannelDetail) release.Summary {
	for _, r := range d.Releases {
		if r.Version == d.Channel.Head {
			return r
		}
	}
	return release.Summary{}
}

// resolveRelease turns the spec's version into the one to publish (DESIGN
// §9) and lists its datasets, each checked for completeness: auto when a
// URI holds {VERSION} and nothing else is asked, the current time
// otherwise. A clock-derived version the channel already holds moves on
// to the next second, so two runs within one second do not collide and
// the second still reports its own outcome.
func (a *app) resolveRelease(ctx context.Context, spec publishSpec, d api.ChannelDetail) (string, []release.Dataset, error) {
	existing := make(map[string]bool, len(d.Releases))
	for _, r := range d.Releases {
		existing[r.Version] = true
	}
	lister := source.NewMux(source.Options{})
	c := newCompleteness(spec, d.Channel.Config)
	v := spec.version
	switch {
	case v == "" && !spec.hasPlaceholder():
		t := a.now()
		for v = release.NewVersion(t); existing[v]; v = release.NewVersion(t) {
			t = t.Add(time.Second)
		}
	case v == "" || v == versionAuto:
		return resolveAuto(ctx, lister, spec, c, existing)
	case existing[v]:
		return "", nil, refuse(exitConflict, "release %s/%s already exists; publish under a new version", d.Channel.Name, v)
	}
	datasets, err := listComplete(ctx, lister, spec, c, v)
	return v, datasets, err
}

func (a *app) sendPublish(ctx context.Context, cl *client.Client, rel release.Release, req api.PublishRequest) (api.PublishResponse, error) {
	ctx, cancel := a.request(ctx)
	defer cancel()
	req.Version, req.Datasets = rel.Version, rel.Datasets
	return cl.Publish(ctx, rel.Channel, req)
}

func publishedTable(w io.Writer, resp api.PublishResponse) {
	r := resp.Release
	fmt.Fprintf(w, "published %s/%s (seq %d): %s, %s\n", safe(r.Channel), safe(r.Version), r.Seq, plural(r.Files, "file"), humanBytes(r.Bytes))
	datasetTable(w, r.Datasets)
	if resp.Promoted {
		fmt.Fprintf(w, "promoted: head is %s\n", safe(resp.Head))
	} else {
		fmt.Fprintf(w, "not promoted: head stays %s\n", safe(orDash(resp.Head)))
	}
}
