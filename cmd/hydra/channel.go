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
)

func (a *app) channelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Create, list, show, change and delete channels",
		Args:  noArgs,
		RunE:  helpOnly,
	}
	cmd.AddCommand(a.channelCreateCmd(), a.channelListCmd(), a.channelShowCmd(), a.channelSetCmd(), a.channelDeleteCmd())
	return cmd
}

// channelFlags are the flags of `channel create`; zero leaves a setting to
// the manager's default.
type channelFlags struct {
	keep, nodeKeep, maxUnavailable int
	maxAge, drain, reloadTimeout   time.Duration
	warm                           warmFlags
}

func (f channelFlags) config() release.Config {
	return release.Config{
		Keep:     f.keep,
		MaxAge:   release.Duration{Duration: f.maxAge},
		NodeKeep: f.nodeKeep,
		Rollout: release.RolloutPolicy{
			MaxUnavailable: f.maxUnavailable,
			Drain:          release.Duration{Duration: f.drain},
			ReloadTimeout:  release.Duration{Duration: f.reloadTimeout},
		},
	}
}

func (a *app) channelCreateCmd() *cobra.Command {
	var f channelFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a channel (unset settings take the manager's defaults)",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := f.config()
			if err := f.warm.createConfig(cmd, &cfg); err != nil {
				return err
			}
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				ch, err := cl.CreateChannel(ctx, args[0], cfg)
				if err != nil {
					return err
				}
				return a.render(ch, func(w io.Writer) {
					fmt.Fprintf(w, "channel %s created\n", safe(ch.Name))
					printChannel(w, ch)
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&f.keep, "keep", 0, fmt.Sprintf("releases the manager keeps (default %d)", release.DefaultKeep))
	fs.DurationVar(&f.maxAge, "max-age", 0, "remove releases older than this (default: no age limit)")
	fs.IntVar(&f.nodeKeep, "node-keep", 0, fmt.Sprintf("releases each node keeps (default %d)", release.DefaultNodeKeep))
	fs.IntVar(&f.maxUnavailable, "max-unavailable", 0, fmt.Sprintf("pods per workload drained at once (default %d)", release.DefaultMaxUnavailable))
	fs.DurationVar(&f.drain, "drain", 0, fmt.Sprintf("longest wait for a pod to leave its endpoints (default %v)", release.DefaultDrain))
	fs.DurationVar(&f.reloadTimeout, "reload-timeout", 0, fmt.Sprintf("time a pod has to become Ready after a flip (default %v)", release.DefaultReloadTimeout))
	f.warm.add(cmd, false)
	return cmd
}

func (a *app) channelListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List channels",
		Args:    exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				chans, err := cl.ListChannels(ctx)
				if err != nil {
					return err
				}
				if chans == nil {
					chans = []release.Channel{} // "channels": [] rather than null
				}
				return a.render(api.ChannelList{Channels: chans}, func(w io.Writer) { channelTable(w, chans) })
			})
		},
	}
}

func channelTable(w io.Writer, chans []release.Channel) {
	row(w, "NAME", "HEAD", "PINNED", "PAUSED", "RELEASES", "UPDATED")
	for _, ch := range chans {
		row(w, ch.Name, orDash(ch.Head), orDash(ch.Pinned), yesNo(ch.Paused), ch.ReleaseCount, formatTime(ch.UpdatedAt))
	}
}

func (a *app) channelShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a channel: head, pin, settings, releases, nodes and pods",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				d, err := cl.GetChannel(ctx, args[0])
				if err != nil {
					return err
				}
				return a.render(d, func(w io.Writer) { channelDetail(w, d) })
			})
		},
	}
}

func channelDetail(w io.Writer, d api.ChannelDetail) {
	fmt.Fprintf(w, "Channel:\t%s\n", safe(d.Channel.Name))
	printChannel(w, d.Channel)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "RELEASES")
	releaseTable(w, d.Releases, d.Channel.Head)
	fmt.Fprintln(w)
	statusTables(w, d.Status)
	warmSection(w, d)
}

// printChannel writes the head, pin, pause and settings as "Key:\tvalue".
func printChannel(w io.Writer, ch release.Channel) {
	c := ch.Config
	paused := "no"
	if ch.Paused {
		paused = "yes: " + safe(orDash(ch.PauseReason))
	}
	maxAge := "none"
	if c.MaxAge.Duration > 0 {
		maxAge = c.MaxAge.String()
	}
	fmt.Fprintf(w, "Head:\t%s\n", safe(orDash(ch.Head)))
	fmt.Fprintf(w, "Pinned:\t%s\n", safe(orDash(ch.Pinned)))
	fmt.Fprintf(w, "Paused:\t%s\n", paused)
	fmt.Fprintf(w, "Retention:\tkeep %d, max-age %s, node-keep %d\n", c.Keep, maxAge, c.NodeKeep)
	fmt.Fprintf(w, "Rollout:\tmax-unavailable %d, drain %v, reload-timeout %v\n",
		c.Rollout.MaxUnavailable, c.Rollout.Drain.Duration, c.Rollout.ReloadTimeout.Duration)
	fmt.Fprintf(w, "Completeness:\trequire-marker %s, min-objects %d\n", safe(orDash(c.RequireMarker)), c.MinObjects)
	fmt.Fprintf(w, "Warm:\t%s\n", safe(warmText(c.Warm)))
	fmt.Fprintf(w, "Node quota:\t%s\n", quotaText(c.NodeQuota))
	fmt.Fprintf(w, "Created:\t%s\n", formatTime(ch.CreatedAt))
}

func (a *app) channelDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a channel and its releases (refused while volumes use it)",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				if err := cl.DeleteChannel(ctx, args[0]); err != nil {
					return err
				}
				done := deleted{Channel: args[0], Deleted: true}
				return a.render(done, func(w io.Writer) { fmt.Fprintf(w, "channel %s deleted\n", args[0]) })
			})
		},
	}
}

// deleted is the JSON/YAML answer of `channel delete`; the API returns no
// body, but a script reading -o json should still get a document.
type deleted struct {
	Channel string `json:"channel"`
	Deleted bool   `json:"deleted"`
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// channelSetCmd changes settings of an existing channel: only the flags
// given are sent, as a JSON merge patch the manager validates whole.
func (a *app) channelSetCmd() *cobra.Command {
	var f channelFlags
	var marker string
	var minObjects int
	cmd := &cobra.Command{
		Use: "set NAME [--keep N] [--max-age D] [--node-keep N] [--max-unavailable N] [--drain D] [--reload-timeout D] [--require-marker KEY] [--min-objects N] " +
			"[--warm K=V[,K=V] [--warm-medium disk|memory] | --no-warm] [--node-quota SIZE]",
		Short: "Change a channel's settings; the manager validates them and logs old and new values",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			patch := settingsPatch(cmd, f, marker, minObjects)
			// The warm flags are checked before any call; the selector is
			// completed once the current one is read.
			if err := f.warm.patch(cmd, map[string]any{}, args[0], &release.WarmConfig{}); err != nil {
				return err
			}
			if len(patch) == 0 && !f.warm.given(cmd) {
				return usageError{fmt.Errorf("channel set: give at least one setting flag (see hydra channel set --help)")}
			}
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				var cur *release.WarmConfig
				if f.warm.wantsCurrent(cmd) {
					d, err := cl.GetChannel(ctx, args[0])
					if err != nil {
						return err
					}
					cur = d.Channel.Config.Warm
				}
				if err := f.warm.patch(cmd, patch, args[0], cur); err != nil {
					return err
				}
				resp, err := cl.PatchConfig(ctx, args[0], patch)
				if err != nil {
					return err
				}
				return a.render(resp, func(w io.Writer) {
					if len(resp.Changes) == 0 {
						fmt.Fprintf(w, "channel %s: no setting changed\n", args[0])
					}
					for _, c := range resp.Changes {
						fmt.Fprintf(w, "channel %s: %s %s -> %s\n", args[0], safe(c.Setting), safe(c.Old), safe(c.New))
					}
				})
			})
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&f.keep, "keep", 0, "releases the manager keeps")
	fs.DurationVar(&f.maxAge, "max-age", 0, "remove releases older than this (0: no age limit)")
	fs.IntVar(&f.nodeKeep, "node-keep", 0, "releases each node keeps")
	fs.IntVar(&f.maxUnavailable, "max-unavailable", 0, "pods per workload drained at once")
	fs.DurationVar(&f.drain, "drain", 0, "longest wait for a pod to leave its endpoints")
	fs.DurationVar(&f.reloadTimeout, "reload-timeout", 0, "time a pod has to become Ready after a flip")
	fs.StringVar(&marker, "require-marker", "", "key every dataset of a publish must have (empty: none)")
	fs.IntVar(&minObjects, "min-objects", 0, "fewest files a published dataset may have (0: no minimum)")
	f.warm.add(cmd, true)
	return cmd
}

// settingsPatch is the merge patch of the setting flags given.
func settingsPatch(cmd *cobra.Command, f channelFlags, marker string, minObjects int) map[string]any {
	patch := map[string]any{}
	rollout := map[string]any{}
	set := func(flag string, m map[string]any, key string, v any) {
		if cmd.Flags().Changed(flag) {
			m[key] = v
		}
	}
	set("keep", patch, "keep", f.keep)
	set("max-age", patch, "maxAge", f.maxAge.String())
	set("node-keep", patch, "nodeKeep", f.nodeKeep)
	set("require-marker", patch, "requireMarker", marker)
	set("min-objects", patch, "minObjects", minObjects)
	set("max-unavailable", rollout, "maxUnavailable", f.maxUnavailable)
	set("drain", rollout, "drain", f.drain.String())
	set("reload-timeout", rollout, "reloadTimeout", f.reloadTimeout.String())
	if len(rollout) > 0 {
		patch["rollout"] = rollout
	}
	return patch
}
