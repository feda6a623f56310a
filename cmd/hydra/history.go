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

func (a *app) promoteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "promote CHANNEL VERSION",
		Short: "Move the head to VERSION (for example one published with --no-promote)",
		Args:  exactArgs("CHANNEL", "VERSION"),
	}
	return a.headCmd(cmd, func(ctx context.Context, cl *client.Client, args []string) (release.Channel, error) {
		return cl.SetHead(ctx, args[0], args[1])
	})
}

func (a *app) historyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "history CHANNEL",
		Short: "List every move of the channel's head and pin: when, who, from, to and why",
		Args:  exactArgs("CHANNEL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				moves, err := cl.History(ctx, args[0])
				if err != nil {
					return err
				}
				if moves == nil {
					moves = []release.HeadMove{}
				}
				return a.render(api.History{Moves: moves}, func(w io.Writer) { historyTable(w, moves) })
			})
		},
	}
}

// historyTable lists head moves oldest first; UNDOES names the move a
// plain rollback undid.
func historyTable(w io.Writer, moves []release.HeadMove) {
	if len(moves) == 0 {
		fmt.Fprintln(w, "(no head moves)")
		return
	}
	row(w, "ID", "TIME", "CAUSE", "FROM", "TO", "PINNED", "BY", "UNDOES")
	for _, mv := range moves {
		undoes := "-"
		if mv.Undoes != 0 {
			undoes = fmt.Sprint(mv.Undoes)
		}
		row(w, mv.ID, formatTime(mv.At), mv.Cause, orDash(mv.From), orDash(mv.To), orDash(mv.Pinned), orDash(mv.By), undoes)
	}
}

func (a *app) releaseRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm CHANNEL VERSION",
		Aliases: []string{"remove"},
		Short:   "Remove a release that is not the head, not pinned and not in use by any pod",
		Args:    exactArgs("CHANNEL", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.call(cmd, func(ctx context.Context, cl *client.Client) error {
				if err := cl.DeleteRelease(ctx, args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "removed release %s/%s\n", args[0], args[1])
				return nil
			})
		},
	}
}
