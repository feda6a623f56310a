package main

import (
	"context"
	"fmt"
	"io"

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
			"A template file (-f) holds version, datasets [{name, uri}] and noPromote; flags override\n" +
			"and extend it.",
		Args: exactArgs("CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.versionSet = cmd.Flags().Changed("version")
			f.noPromoteSet = cmd.Flags().Changed("no-promote")
			spec, err := buildSpec(f)
			if err != nil {
				return err
			}
			return a.publish(cmd, args[0], spec, f.wait)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&f.datasets, "dataset", nil, "NAME=URI of a dataset (repeatable)")
	fs.StringVar(&f.version, "version", "", "release version, or auto (default: auto with a {VERSION} placeholder, else the current time)")
	fs.StringVarP(&f.template, "file", "f", "", "YAML template: version, datasets [{name, uri}], noPromote")
	fs.BoolVar(&f.noPromote, "no-promote", false, "store the release without moving the head to it")
	fs.BoolVar(&f.wait, "wait", false, "after publishing, wait until every node serving the channel has the release ready")
	return cmd
}

// publish resolves the version, lists every dataset and stores the release.
// The checks that need no listing come first: a listing of a large prefix
// takes minutes, and its result is wasted if the manager then refuses.
func (a *app) publish(cmd *cobra.Command, channel string, spec publishSpec, wait bool) error {
	if err := release.ValidateChannelName(channel); err != nil {
		return err
	}
	cl, err := a.client(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	existing, err := a.releases(ctx, cl, channel)
	if err != nil {
		return err
	}
	lister := source.NewMux(source.Options{})
	version, err := a.chooseVersion(ctx, lister, spec)
	if err != nil {
		return err
	}
	if existing[version] {
		return fmt.Errorf("release %s/%s already exists; publish under a new version", channel, version)
	}
	rel := release.Release{Channel: channel, Version: version}
	if rel.Datasets, err = listDatasets(ctx, lister, spec, version); err != nil {
		return err
	}
	// Checked here so that a bad manifest is reported before a large upload.
	if err := rel.Validate(); err != nil {
		return err
	}
	resp, err := a.sendPublish(ctx, cl, rel, spec.noPromote)
	if err != nil {
		return err
	}
	if err := a.render(resp, func(w io.Writer) { publishedTable(w, resp) }); err != nil {
		return err
	}
	if !wait {
		return nil
	}
	return a.waitAfterPublish(ctx, cl, resp)
}

// releases returns the versions the channel holds; it fails with the
// manager's "not found" when the channel does not exist.
func (a *app) releases(ctx context.Context, cl *client.Client, channel string) (map[string]bool, error) {
	ctx, cancel := a.request(ctx)
	defer cancel()
	rels, err := cl.ListReleases(ctx, channel)
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(rels))
	for _, r := range rels {
		have[r.Version] = true
	}
	return have, nil
}

// chooseVersion turns the spec's version into the one to publish (DESIGN
// §9): auto when a URI holds {VERSION} and nothing else is asked, the
// current time otherwise.
func (a *app) chooseVersion(ctx context.Context, l source.Lister, spec publishSpec) (string, error) {
	v := spec.version
	if v == "" {
		if !spec.hasPlaceholder() {
			return release.NewVersion(a.now()), nil
		}
		v = versionAuto
	}
	if v != versionAuto {
		return v, nil
	}
	resolved, err := source.ResolveVersion(ctx, l, spec.placeholderSources())
	if err != nil {
		return "", fmt.Errorf("--version auto: %w", err)
	}
	return resolved, nil
}

// listDatasets lists each dataset's source, resolved to version, into its
// manifest.
func listDatasets(ctx context.Context, l source.Lister, spec publishSpec, version string) ([]release.Dataset, error) {
	out := make([]release.Dataset, 0, len(spec.datasets))
	for _, d := range spec.datasets {
		src := d.source.WithVersion(version)
		m, err := l.List(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.name, err)
		}
		out = append(out, release.Dataset{Name: d.name, Source: src.String(), Manifest: m})
	}
	return out, nil
}

func (a *app) sendPublish(ctx context.Context, cl *client.Client, rel release.Release, noPromote bool) (api.PublishResponse, error) {
	ctx, cancel := a.request(ctx)
	defer cancel()
	return cl.Publish(ctx, rel.Channel, api.PublishRequest{Version: rel.Version, Datasets: rel.Datasets, NoPromote: noPromote})
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
