package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/node"
	"github.com/repld/repld/primary"
)

// primaryOptions are the flags of `repld primary`.
type primaryOptions struct {
	nodeOptions
	sync          *choiceValue
	syncReplicas  int
	syncTimeout   time.Duration
	whenShort     *choiceValue
	heartbeat     time.Duration
	debugWorkload bool
}

func newPrimaryCmd(g *globalOptions) *cobra.Command {
	o := &primaryOptions{
		sync:      newChoice(primary.Async.String(), primary.Async.String(), primary.Received.String(), primary.Applied.String()),
		whenShort: newChoice(primary.Block.String(), primary.Block.String(), primary.Degrade.String()),
	}
	cmd := &cobra.Command{
		Use:   "primary --data DIR --listen HOST:PORT --admin HOST:PORT",
		Short: "Run the primary: commit transactions and stream them to replicas",
		Long: `Run the primary node. It keeps the authoritative store in --data, creates the
replication group on --listen (replicas join it there) and serves the admin
HTTP endpoint on --admin.

--sync says what a commit waits for once it is durable locally: nothing
(async), --sync-replicas healthy replicas holding it (received) or having
committed it (applied). A commit waits at most --sync-timeout; with fewer
healthy replicas than --sync-replicas, --sync-when-short block waits for them
(up to the timeout) and degrade returns at once. Either way /status shows the
cluster as degraded.`,
		Example: `  repld primary --data /var/lib/repld --listen 10.0.0.1:7000 --admin 127.0.0.1:7080
  repld primary --data ./p --listen 127.0.0.1:7000 --admin 127.0.0.1:7080 --sync applied --sync-replicas 1
  REPLD_SYNC=received REPLD_SYNC_TIMEOUT=2s repld primary --config /etc/repld/primary.conf`,
		Args: cobra.NoArgs,
		RunE: g.runE(o.validate, func(cmd *cobra.Command, log *zap.Logger) error {
			return runPrimary(cmd.Context(), o, log)
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.name, "name", "primary", "node name, shown in status and logs")
	o.addFlags(fs, "address replicas reach the primary at (host:port); required", "")
	addChoice(cmd, fs, o.sync, "sync", "what a commit waits for after committing locally")
	fs.IntVar(&o.syncReplicas, "sync-replicas", 1, "how many healthy replicas a received or applied commit waits for (k)")
	fs.DurationVar(&o.syncTimeout, "sync-timeout", primary.DefaultSyncTimeout, "longest wait for replicas; the commit then returns not-replicated (it is durable locally)")
	addChoice(cmd, fs, o.whenShort, "sync-when-short", "with fewer than k healthy replicas: block (wait up to --sync-timeout) or degrade (return at once)")
	fs.DurationVar(&o.heartbeat, "heartbeat", primary.DefaultHeartbeatInterval, "how often replicas are told the last TID (lag measurement) and the registry is saved")
	fs.BoolVar(&o.debugWorkload, "debug-workload", false, "testing aid: serve POST /debug/commit?txns=N&size=B on the admin endpoint, committing synthetic transactions")
	_ = fs.MarkHidden("debug-workload")
	markFileFlags(cmd)
	return cmd
}

func (o *primaryOptions) validate() error {
	errs := []error{o.nodeOptions.validate()}
	if o.syncReplicas < 1 {
		errs = append(errs, fmt.Errorf("--sync-replicas %d: use 1 or more (with --sync async it is ignored)", o.syncReplicas))
	}
	if o.syncTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--sync-timeout %v: use a positive duration such as 5s", o.syncTimeout))
	}
	if o.heartbeat <= 0 {
		errs = append(errs, fmt.Errorf("--heartbeat %v: use a positive duration such as 1s", o.heartbeat))
	}
	return errors.Join(errs...)
}

func (o *primaryOptions) syncPolicy() (primary.SyncPolicy, error) {
	mode, err := primary.ParseMode(o.sync.String())
	if err != nil {
		return primary.SyncPolicy{}, err
	}
	when, err := primary.ParseWhenShort(o.whenShort.String())
	if err != nil {
		return primary.SyncPolicy{}, err
	}
	return primary.SyncPolicy{Mode: mode, Replicas: o.syncReplicas, Timeout: o.syncTimeout, WhenShort: when}, nil
}

func runPrimary(ctx context.Context, o *primaryOptions, log *zap.Logger) error {
	policy, err := o.syncPolicy()
	if err != nil {
		return err
	}
	n, g, err := openNode(ctx, &o.nodeOptions, node.RolePrimary, node.Config{
		Primary: primary.Config{Sync: policy, HeartbeatInterval: o.heartbeat},
	}, log)
	if err != nil {
		return err
	}
	stop, err := o.client.start(&o.nodeOptions, n, func() error { return stopNode(log, n, g) }, log)
	if err != nil {
		return errors.Join(err, stop())
	}

	acfg := nodeAdmin(&o.nodeOptions, n, log)
	if o.debugWorkload {
		acfg.Handlers = workloadHandlers(n.Primary(), log)
		log.Warn("debug workload endpoint enabled: POST /debug/commit commits synthetic transactions; a testing aid, never for production")
	}
	srv, err := admin.Listen(acfg)
	if err != nil {
		return errors.Join(fmt.Errorf("--admin: %w", err), stop())
	}
	log.Info("primary serving",
		zap.String("name", o.name),
		zap.String("listen", g.Addr().String()),
		zap.String("admin", srv.Addr().String()),
		zap.String("group", o.group),
		zap.Uint64("epoch", n.Primary().Epoch()),
		zap.Stringer("sync", policy.Mode),
		zap.Int("sync_replicas", policy.Replicas),
		zap.Bool("tls", o.tlsCert != ""))
	return errors.Join(serveUntilDone(ctx, srv, log), stop())
}
