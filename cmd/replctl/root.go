package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Exit codes, documented in --help.
const (
	exitOK           = 0
	exitInconsistent = 1
	exitError        = 2
)

// errInconsistent is returned by verify and diff when the nodes disagree;
// the output already says where, so main prints nothing more.
var errInconsistent = errors.New("inconsistency found")

// nodesEnv supplies --nodes when the flag is not given.
const nodesEnv = "REPLCTL_NODES"

// DefaultTimeout bounds every request to a node.
const DefaultTimeout = 30 * time.Second

// options are the global flags and the process's outside world.
type options struct {
	nodes   []string
	timeout time.Duration
	json    bool
	stdout  io.Writer
	stderr  io.Writer
	// terminal reports whether stdout is a terminal (progress bars, screen
	// refresh); false in tests.
	terminal bool
	// transport is shared by the clients of one run, so bisection reuses
	// connections; run closes them at the end.
	transport *http.Transport
}

// run executes replctl with args and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) int {
	root, o := newRoot(stdout, stderr, lookupEnv)
	defer o.transport.CloseIdleConnections()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInconsistent):
		return exitInconsistent
	default:
		fmt.Fprintln(stderr, "replctl:", err)
		return exitError
	}
}

// NewRootCmd returns the replctl command with its subcommands, writing to
// the process's standard output and error.
func NewRootCmd() *cobra.Command {
	root, _ := newRoot(os.Stdout, os.Stderr, os.LookupEnv)
	return root
}

func newRoot(stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) (*cobra.Command, *options) {
	o := &options{stdout: stdout, stderr: stderr, terminal: isTerminal(stdout)}
	o.transport = http.DefaultTransport.(*http.Transport).Clone()
	o.transport.MaxIdleConnsPerHost = 4
	root := &cobra.Command{
		Use:   "replctl",
		Short: "Inspect a repld cluster, prove it consistent or find where it is not",
		Long: `replctl talks to the admin HTTP endpoints of repld nodes (--nodes, or the
REPLCTL_NODES environment variable: comma-separated HOST:PORT admin
addresses). A node is named on the command line by its admin address or by
the name it reports in /status.

Exit codes:
  0  ok (for verify and diff: the nodes agree)
  1  inconsistency found (verify, diff)
  2  usage or connection error; the message names the node and why`,
		Example: `  replctl --nodes 127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103 status
  export REPLCTL_NODES=127.0.0.1:7101,127.0.0.1:7102
  replctl status --watch
  replctl verify --json
  replctl diff primary r1
  replctl quarantine r1 --reason "disk replaced"
  replctl release r1
  replctl resync r1
  replctl promote r2`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable, so cobra.NoArgs rejects an unknown command instead of
		// printing help and exiting 0.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// Help and shell completion work without any node.
			switch {
			case !cmd.HasParent(), cmd.Parent().Name() == "completion":
				return nil
			case cmd.Name() == "help", cmd.Name() == "completion", strings.HasPrefix(cmd.Name(), "__complete"):
				return nil
			}
			return o.resolveNodes(cmd.Flags(), lookupEnv)
		},
	}
	pf := root.PersistentFlags()
	pf.StringSliceVar(&o.nodes, "nodes", nil, "admin addresses of the nodes, HOST:PORT[,HOST:PORT...] (also "+nodesEnv+")")
	pf.DurationVar(&o.timeout, "timeout", DefaultTimeout, "bound on each request to a node")
	pf.BoolVar(&o.json, "json", false, "print stable JSON for scripts instead of a table")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w; see replctl --help", err)
	})
	root.AddCommand(
		newStatusCmd(o), newVerifyCmd(o), newDiffCmd(o),
		newQuarantineCmd(o), newReleaseCmd(o), newResyncCmd(o), newPromoteCmd(o),
	)
	return root, o
}

// resolveNodes fills --nodes from the environment and checks every address.
func (o *options) resolveNodes(flags *pflag.FlagSet, lookupEnv func(string) (string, bool)) error {
	source := "--nodes"
	if f := flags.Lookup("nodes"); f != nil && !f.Changed {
		if v, ok := lookupEnv(nodesEnv); ok {
			o.nodes = strings.Split(v, ",")
			source = nodesEnv
		}
	}
	var nodes []string
	seen := map[string]bool{}
	for _, n := range o.nodes {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(n); err != nil {
			return fmt.Errorf("%s: %q is not HOST:PORT (%v); give the nodes' admin addresses like 127.0.0.1:7101", source, n, err)
		}
		if !seen[n] {
			seen[n] = true
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 {
		return fmt.Errorf("no nodes: pass --nodes HOST:PORT[,HOST:PORT...] or set %s", nodesEnv)
	}
	if o.timeout <= 0 {
		return fmt.Errorf("--timeout %v: use a positive duration such as 30s", o.timeout)
	}
	o.nodes = nodes
	return nil
}

func (o *options) clients() []*client {
	cs := make([]*client, len(o.nodes))
	for i, n := range o.nodes {
		cs[i] = newClient(n, o.timeout, o.transport)
	}
	return cs
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// exactArgs is cobra.ExactArgs with a message naming what is expected.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %s, got %d argument(s); see %s --help", cmd.CommandPath(), what, len(args), cmd.CommandPath())
		}
		return nil
	}
}
