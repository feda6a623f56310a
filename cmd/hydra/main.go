// Command hydra is the CLI of publishers and operators: it creates channels,
// publishes releases from S3 or local directories, moves heads and shows how
// a rollout stands (docs/design.md §9).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Ctrl-C cancels the command's context: a `status --watch` ends cleanly,
	// a publish stops listing, a request in flight is abandoned.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the process exit code (see
// exitCode). Every failure ends in exactly one line "hydra: <reason>" on
// stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	return newApp(stdout, stderr, env).execute(ctx, args)
}

// execute runs one command line in a and returns the exit code.
func (a *app) execute(ctx context.Context, args []string) int {
	cmd := a.rootCmd()
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(a.stderr, "hydra: %s\n", describe(err))
		return exitCode(err)
	}
	return exitOK
}
