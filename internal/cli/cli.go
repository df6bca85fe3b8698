// Package cli is the gust command line: `gust up` runs a node (through an
// UpFunc the caller provides), and every other command talks to a node
// only through the public client package, signing with the key found by
// internal/creds.
//
// Run is the whole program as a function: it takes the arguments and the
// process environment explicitly and returns the exit status, so tests
// drive it exactly as main does. There is no package-level state.
//
// Exit status: 0 on success, 1 when a command fails (including a function
// that returned an error from `gust invoke`), 2 on a usage error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gustfaas/gust/client"
	"github.com/gustfaas/gust/internal/creds"
)

// Exit statuses returned by Run.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// DefaultServer is the node the CLI talks to when neither --server nor
// GUST_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:8080"

// EnvServer names the environment variable that overrides DefaultServer.
const EnvServer = "GUST_SERVER"

// UpOptions are the flags of `gust up`.
type UpOptions struct {
	// Listen is the address to serve HTTP on (host:port).
	Listen string
	// DataDir holds the node's durable state and its credentials file.
	DataDir string
	// Examples asks for the bundled example functions to be deployed on
	// start.
	Examples bool
	// IdleTimeout is how long an idle instance is kept warm; zero means the
	// node's default.
	IdleTimeout time.Duration
	// MemoryMB caps the memory of all instances together; zero means the
	// node's default.
	MemoryMB int
	// GraceTimeout bounds how long in-flight work may run at shutdown.
	GraceTimeout time.Duration
	// Verbose asks for operational logging on stderr.
	Verbose bool
	// PricePerRequest and PricePerGBSecond are the price table, in US
	// dollars, usage reports are priced with.
	PricePerRequest  float64
	PricePerGBSecond float64
}

// UpFunc runs a node until ctx ends (SIGINT or SIGTERM), writing what a
// user needs to know to stdout and logs to stderr.
type UpFunc func(ctx context.Context, o UpOptions, stdout, stderr io.Writer) error

// BuildFunc compiles the Go main package in dir and returns the program:
// a wasm module (gobuild.Build) or a Linux executable.
type BuildFunc func(ctx context.Context, dir string) ([]byte, error)

// Env is the process environment Run works in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads an environment variable (os.Getenv).
	Getenv func(string) string
	// Up runs a node for `gust up`; when nil, `gust up` fails.
	Up UpFunc
	// Build compiles Go packages for `gust deploy NAME DIR`; nil means
	// gobuild.Build.
	Build BuildFunc
	// BuildBootstrap compiles Go main packages to Linux executables for
	// `gust deploy --runtime provided.al2023 NAME DIR`; nil means the go
	// tool on PATH (GOOS=linux, the host's GOARCH, -tags lambda.norpc).
	BuildBootstrap BuildFunc
	// HTTPClient sends requests to the node; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// usageError marks an error as the user's mistake in calling gust.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError ends Run with a status and no further message (the command
// has already reported what happened).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Run runs the gust command line with args (without the program name) and
// returns the process's exit status. SIGINT and SIGTERM cancel the context
// commands run with; a second signal gets the default behaviour.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // let a second signal terminate the process
	}()

	a := &app{env: env}
	root := a.rootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(env.Stderr, "gust: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || !a.ran {
		// Errors cobra raises before a command runs are usage errors too:
		// unknown commands and flags, wrong argument counts.
		if name := a.usageCommand(root, args); name != "" {
			fmt.Fprintf(env.Stderr, "Run '%s --help' for usage.\n", name)
		}
		return ExitUsage
	}
	return ExitFailure
}

// app holds one Run's flags and environment.
type app struct {
	env Env
	ran bool // a command's RunE was entered

	server  string
	dataDir string
	output  string
}

const (
	outputTable = "table"
	outputJSON  = "json"
)

func (a *app) rootCommand() *cobra.Command {
	server := a.env.Getenv(EnvServer)
	if server == "" {
		server = DefaultServer
	}
	root := &cobra.Command{
		Use:   "gust",
		Short: "Gust runs functions on demand, speaking the AWS Lambda API",
		Long: "Gust is a self-hosted serverless platform in one binary.\n\n" +
			"Start a node with `gust up`, then deploy and invoke functions with the other commands.\n" +
			"Credentials are taken from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else\n" +
			"AWS_SHARED_CREDENTIALS_FILE (profile AWS_PROFILE), else <data>/credentials.",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			if a.output != outputTable && a.output != outputJSON {
				return usagef("--output must be %q or %q, not %q", outputTable, outputJSON, a.output)
			}
			return nil
		},
	}
	root.SetIn(a.env.Stdin)
	root.SetOut(a.env.Stdout)
	root.SetErr(a.env.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.server, "server", server, "URL of the gust node (env "+EnvServer+")")
	pf.StringVar(&a.dataDir, "data", defaultDataDir(a.env.Getenv), "data directory (holds the node's state and its credentials file)")
	pf.StringVarP(&a.output, "output", "o", outputTable, "output format: table or json")

	root.AddCommand(
		a.upCommand(),
		a.deployCommand(),
		a.promoteCommand(),
		a.rollbackCommand(),
		a.invokeCommand(),
		a.lsCommand(),
		a.getCommand(),
		a.rmCommand(),
		a.logsCommand(),
		a.usageReportCommand(),
		a.versionCommand(),
		a.keysCommand(),
		a.scheduleCommand(),
		a.invocationCommand(),
		a.dlqCommand(),
		a.kvCommand(),
		a.objectsCommand(),
		a.triggerCommand(),
		a.publishCommand(),
		a.streamCommand(),
	)
	return root
}

// usageCommand returns the command line that names the command args
// address ("gust deploy"), for pointing at its help.
func (a *app) usageCommand(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.CommandPath()
	}
	return cmd.CommandPath()
}

// defaultDataDir is $XDG_DATA_HOME/gust, else ~/.local/share/gust, else
// empty (unknown).
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "gust")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "share", "gust")
	}
	return ""
}

// client returns a client of the node named by --server, signing with the
// key creds.FromEnvironment finds.
func (a *app) client() (*client.Client, error) {
	k, err := creds.FromEnvironment(a.env.Getenv, a.dataDir)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	opts := []client.Option{client.WithUserAgent("gust-cli")}
	if a.env.HTTPClient != nil {
		opts = append(opts, client.WithHTTPClient(a.env.HTTPClient))
	}
	return client.New(a.server, client.Credentials{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey}, opts...), nil
}

// exactArgs returns a cobra argument validator that wants exactly the
// named arguments and reports a usage error otherwise.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("%s takes %d argument(s) (%s), got %d", cmd.CommandPath(), len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// humanBytes renders n as "512 B", "1.5 KiB", "2.0 MiB".
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
