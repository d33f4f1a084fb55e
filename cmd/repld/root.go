package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"
)

// globalOptions are the flags every command has.
type globalOptions struct {
	config    string
	logLevel  *choiceValue
	logFormat *choiceValue
	// stderr receives the logs; a terminal gets the console format by
	// default.
	stderr io.Writer
	// lookupEnv reads the environment (os.LookupEnv outside tests).
	lookupEnv func(string) (string, bool)
}

// NewRootCmd returns the repld command with its subcommands.
func NewRootCmd() *cobra.Command {
	return newRootCmd(os.Stderr, os.LookupEnv)
}

func newRootCmd(stderr io.Writer, lookupEnv func(string) (string, bool)) *cobra.Command {
	g := &globalOptions{
		logLevel:  newChoice("info", "debug", "info", "warn", "error"),
		logFormat: newChoice("", "json", "console"),
		stderr:    stderr,
		lookupEnv: lookupEnv,
	}
	root := &cobra.Command{
		Use:   "repld",
		Short: "Primary–replica replication for a ZODB-style object store",
		Long: `repld runs one node of a replicated object store: a primary that commits
transactions and streams them to its replicas, or a replica that applies
the stream and serves reads. Every node serves an admin HTTP endpoint
(/status, /healthz, /metrics, /chain).

Every flag can also be set with an environment variable, REPLD_ followed by
the flag name in upper case with dashes as underscores (REPLD_SYNC_TIMEOUT),
or in a config file (--config) of "name = value" lines. The command line
wins over the environment, which wins over the config file.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.config, "config", "", "config file of name = value lines (also REPLD_CONFIG)")
	addChoice(root, pf, g.logLevel, "log-level", "log level")
	addChoice(root, pf, g.logFormat, "log-format", "log format (default console on a terminal, json otherwise)")
	root.SetErr(stderr)
	root.AddCommand(newPrimaryCmd(g), newReplicaCmd(g), newDemoCmd(g), newBenchCmd(g), newBenchTableCmd(g))
	return root
}

// setup applies the environment and config file to cmd's flags and builds
// the logger; every node command calls it first.
// runE is every subcommand's RunE: settings and logging first, then the
// options' validation (if any), then run with the logger, synced at the end.
func (g *globalOptions) runE(validate func() error, run func(cmd *cobra.Command, log *zap.Logger) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		log, err := g.setup(cmd)
		if err != nil {
			return err
		}
		defer func() { _ = log.Sync() }()
		if validate != nil {
			if err := validate(); err != nil {
				return err
			}
		}
		return run(cmd, log)
	}
}

// quietUnlessAsked silences the nodes' logs of a command whose output is its
// report (demo, bench-table) unless --log-level was given explicitly.
func quietUnlessAsked(cmd *cobra.Command, log *zap.Logger) *zap.Logger {
	if cmd.Flags().Changed("log-level") {
		return log
	}
	return zap.NewNop()
}

func (g *globalOptions) setup(cmd *cobra.Command) (*zap.Logger, error) {
	if err := applySettings(cmd, g.lookupEnv); err != nil {
		return nil, err
	}
	return newLogger(g.logLevel.String(), g.logFormat.String(), g.stderr)
}

// newLogger builds the process logger. format "" picks console when w is a
// terminal and json otherwise (log collectors want one object per line).
func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level %q: %v; use debug, info, warn or error", level, err)
	}
	if format == "" {
		format = "json"
		if isTerminal(w) {
			format = "console"
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("--log-format %q: use json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// gcsLogger bridges the zap logger to the *slog.Logger that gcs takes.
func gcsLogger(log *zap.Logger) *slog.Logger {
	return slog.New(zapslog.NewHandler(log.Core(), zapslog.WithName("gcs")))
}
