package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/utils/clock"

	"github.com/hydra-csi/hydra/pkg/client"
)

// Defaults of the global flags.
const (
	defaultManager = "http://127.0.0.1:8080"
	defaultTimeout = 60 * time.Second
	// defaultPollInterval paces `publish --wait` and `status --watch`.
	defaultPollInterval = 2 * time.Second
)

// app is one invocation of the CLI: where it writes, the environment it
// reads, and the global flags.
type app struct {
	stdout, stderr io.Writer
	// env stands in for os.Getenv so that tests run the CLI in-process
	// with a fake environment.
	env func(string) string

	managerURL string
	token      string
	tokenFile  string
	output     string
	timeout    time.Duration
	// caFile, clientCert and clientKey are the TLS flags.
	caFile, clientCert, clientKey string

	// now stamps default versions; pollInterval paces --wait and --watch,
	// which sleep on clock (a fake one in tests).
	now          func() time.Time
	pollInterval time.Duration
	clock        clock.Clock
	// terminal tells whether w is a terminal (status --watch redraws in
	// place on one).
	terminal func(w io.Writer) bool
}

// newApp is an invocation writing to stdout and stderr, with the real
// clock and terminal detection.
func newApp(stdout, stderr io.Writer, env func(string) string) *app {
	return &app{stdout: stdout, stderr: stderr, env: env, now: time.Now, pollInterval: defaultPollInterval,
		clock: clock.RealClock{}, terminal: isTerminal}
}

// rootCmd builds the whole command tree. Nothing in it reads the process
// environment except through env, and nothing writes outside stdout/stderr.
func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "hydra",
		Short: "Publish versioned datasets to Hydra channels and watch them roll out",
		Long: "hydra talks to hydra-manager: it creates channels, publishes releases from\n" +
			"s3:// or file:// sources, moves a channel's head and shows how nodes and pods stand.",
		// main prints the one-line reason itself; usage dumps would bury it.
		SilenceUsage:       true,
		SilenceErrors:      true,
		DisableSuggestions: true,
		PersistentPreRunE:  func(*cobra.Command, []string) error { return a.validateGlobals() },
		Args:               noArgs,
		RunE:               helpOnly,
	}
	// The CLI surface is a contract (docs/design.md §9): no implicit completion command.
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	a.addGlobalFlags(root)
	root.AddCommand(
		a.channelCmd(),
		a.publishCmd(),
		a.releaseCmd(),
		a.promoteCmd(), a.rollbackCmd(), a.pinCmd(), a.unpinCmd(), a.pauseCmd(), a.resumeCmd(),
		a.historyCmd(),
		a.statusCmd(),
		a.nodeCmd(),
		a.pullCmd(),
		a.demoCmd(),
	)
	return root
}

func (a *app) addGlobalFlags(root *cobra.Command) {
	fs := root.PersistentFlags()
	fs.StringVar(&a.managerURL, "manager", defaultManager, "manager URL (env HYDRA_MANAGER)")
	fs.StringVar(&a.token, "token", "", "bearer token (env HYDRA_TOKEN)")
	fs.StringVar(&a.tokenFile, "token-file", "", "read the bearer token from the first line of this file")
	fs.StringVar(&a.caFile, "ca-file", "", "PEM CA bundle to verify an https:// manager with, instead of the system's (env HYDRA_CA_FILE)")
	fs.StringVar(&a.clientCert, "client-cert", "", "PEM client certificate for a manager that requires one (mutual TLS; env HYDRA_CLIENT_CERT)")
	fs.StringVar(&a.clientKey, "client-key", "", "PEM private key of --client-cert (env HYDRA_CLIENT_KEY)")
	fs.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	fs.DurationVar(&a.timeout, "timeout", defaultTimeout, "time limit of each request to the manager (0: none)")
}

// validateGlobals checks the global flags before any command runs, so a
// bad -o fails before a publish lists anything.
func (a *app) validateGlobals() error {
	switch a.output {
	case outputTable, outputJSON, outputYAML:
	default:
		return usageError{fmt.Errorf("-o %q: want table, json or yaml", a.output)}
	}
	if a.timeout < 0 {
		return usageError{fmt.Errorf("--timeout %v: must not be negative", a.timeout)}
	}
	return nil
}

// client builds the manager client from flags, then environment, then
// defaults: an explicit flag always beats the environment.
func (a *app) client(cmd *cobra.Command) (*client.Client, error) {
	url := a.flagOrEnv(cmd, "manager", a.managerURL, "HYDRA_MANAGER")
	token, err := a.resolveToken(cmd)
	if err != nil {
		return nil, err
	}
	caFile := a.flagOrEnv(cmd, "ca-file", a.caFile, "HYDRA_CA_FILE")
	cert := a.flagOrEnv(cmd, "client-cert", a.clientCert, "HYDRA_CLIENT_CERT")
	key := a.flagOrEnv(cmd, "client-key", a.clientKey, "HYDRA_CLIENT_KEY")
	if (cert == "") != (key == "") {
		return nil, errors.New("--client-cert and --client-key (or HYDRA_CLIENT_CERT and HYDRA_CLIENT_KEY) go together")
	}
	return client.New(url, client.WithToken(token), client.WithCAFile(caFile), client.WithClientCert(cert, key))
}

// flagOrEnv is the flag's value when it was given, else the environment
// variable's when set, else the flag's default.
func (a *app) flagOrEnv(cmd *cobra.Command, flag, value, env string) string {
	if !cmd.Flags().Changed(flag) {
		if v := a.env(env); v != "" {
			return v
		}
	}
	return value
}

func (a *app) resolveToken(cmd *cobra.Command) (string, error) {
	fromFlag, fromFile := cmd.Flags().Changed("token"), cmd.Flags().Changed("token-file")
	switch {
	case fromFlag && fromFile:
		return "", errors.New("--token and --token-file: give one, not both")
	case fromFlag:
		return a.token, nil
	case fromFile:
		return readTokenFile(a.tokenFile)
	}
	return a.env("HYDRA_TOKEN"), nil
}

// readTokenFile returns the token in the file at path (see firstToken).
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token, err := firstToken(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	return token, nil
}

// firstToken returns the token on the first line that is neither blank nor
// a '#' comment. A line may be in the manager's CSV format
// (TOKEN,ROLE[,GLOB]); tokens hold no commas there, so the first field is
// the token and an operator can point the CLI at the manager's own file.
func firstToken(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		token, _, _ := strings.Cut(line, ",")
		return strings.TrimSpace(token), nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no token in the file")
}

// request bounds one manager call by --timeout. Long operations (listing
// sources, --wait, --watch) are bounded by the command's context only.
func (a *app) request(ctx context.Context) (context.Context, context.CancelFunc) {
	if a.timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, a.timeout)
}

// call runs a command's manager requests: it builds the client and bounds
// fn by --timeout.
func (a *app) call(cmd *cobra.Command, fn func(ctx context.Context, cl *client.Client) error) error {
	cl, err := a.client(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := a.request(cmd.Context())
	defer cancel()
	return fn(ctx, cl)
}

// noArgs refuses arguments to a command group, so that a typo such as
// `hydra channel lst` is an error rather than a help page and exit 0.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%sunknown command %q (see %s --help)", where(cmd), args[0], cmd.CommandPath())}
	}
	return nil
}

// helpOnly makes a command group runnable (so its arguments are checked)
// and shows its help when called bare.
func helpOnly(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// exactArgs checks the argument count and names what is expected.
func exactArgs(usage ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(usage) {
			want := strings.Join(usage, " ")
			if want == "" {
				want = "no arguments"
			}
			return usageError{fmt.Errorf("%sexpected %s, got %s", where(cmd), want, countArgs(args))}
		}
		return nil
	}
}

// where prefixes a message with the subcommand ("release show: "); main
// already prints "hydra: ".
func where(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return ""
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ") + ": "
}

func countArgs(args []string) string {
	switch len(args) {
	case 0:
		return "no arguments"
	case 1:
		return fmt.Sprintf("1 argument (%q)", args[0])
	}
	return fmt.Sprintf("%d arguments (%q)", len(args), args)
}
