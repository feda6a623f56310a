package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hydra-csi/hydra/pkg/client"
	"github.com/hydra-csi/hydra/pkg/release"
)

// channelOp is a manager call that changes a channel and returns it.
type channelOp func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error)

// headCmd builds a command that changes a channel's head, pin or pause
// state and prints where the channel stands afterwards.
func (a *app) headCmd(cmd *cobra.Command, op channelOp) *cobra.Command {
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
			ch, err := op(ctx, cl, args)
			if err != nil {
				return err
			}
			return a.render(ch, func(w io.Writer) { headLine(w, ch) })
		})
	}
	return cmd
}

// headLine is the one-line state of a channel after a change.
func headLine(w io.Writer, ch release.Channel) {
	fmt.Fprintf(w, "channel %s: head %s", safe(ch.Name), safe(orDash(ch.Head)))
	if ch.Pinned != "" {
		fmt.Fprintf(w, ", pinned to %s", safe(ch.Pinned))
	}
	if ch.Paused {
		fmt.Fprintf(w, ", rollout paused (%s)", safe(orDash(ch.PauseReason)))
	}
	fmt.Fprintln(w)
}

func (a *app) rollbackCmd() *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "rollback CHANNEL",
		Short: "Move the head back to the previous head (undoing the last move), or to --to VERSION",
		Args:  exactArgs("CHANNEL"),
	}
	cmd.Flags().StringVar(&to, "to", "", "release to move the head to (default: where the head was before its last move not yet undone; see hydra history)")
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.Rollback(ctx, args[0], to)
	})
}

func (a *app) pinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pin CHANNEL VERSION",
		Short: "Hold the head at VERSION; later publishes do not promote until unpin",
		Args:  exactArgs("CHANNEL", "VERSION"),
	}
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.Pin(ctx, args[0], args[1])
	})
}

func (a *app) unpinCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "unpin CHANNEL",
		Short: "Release the pin; the head returns to where it was before the pin, or to a release published with promotion meanwhile",
		Args:  exactArgs("CHANNEL"),
	}
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.Unpin(ctx, args[0])
	})
}

func (a *app) pauseCmd() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "pause CHANNEL",
		Short: "Stop moving pods to the head until resume",
		Args:  exactArgs("CHANNEL"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why; shown by hydra status and hydra channel show")
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.Pause(ctx, args[0], reason)
	})
}

func (a *app) resumeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "resume CHANNEL",
		Short: "Let the rollout of the head continue",
		Args:  exactArgs("CHANNEL"),
	}
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.Resume(ctx, args[0])
	})
}
