package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/node"
)

// replicaOptions are the flags of `repld replica`.
type replicaOptions struct {
	nodeOptions
	primary string
}

func newReplicaCmd(g *globalOptions) *cobra.Command {
	o := &replicaOptions{}
	cmd := &cobra.Command{
		Use:   "replica --name NAME --data DIR --primary HOST:PORT --admin HOST:PORT",
		Short: "Run a replica: apply the primary's stream and serve reads",
		Long: `Run a replica node. It joins the primary's replication group at --primary,
catches up from what its store in --data already holds, then applies the live
stream. A replica that fails to apply a transaction (a storage error, a chain
mismatch, a protocol error) quarantines itself: it stops applying, records
why in --data and stays quarantined across restarts until released.

--listen is the address of this node's own group-communication listener;
replicas dial the primary, so the default (a free loopback port) suits most
setups.`,
		Example: `  repld replica --name r1 --data /var/lib/repld --primary 10.0.0.1:7000 --admin 127.0.0.1:7081
  REPLD_NAME=r2 REPLD_DATA=./r2 REPLD_PRIMARY=127.0.0.1:7000 REPLD_ADMIN=127.0.0.1:7082 repld replica`,
		Args: cobra.NoArgs,
		RunE: g.runE(o.validate, func(cmd *cobra.Command, log *zap.Logger) error {
			return runReplica(cmd.Context(), o, log)
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&o.name, "name", "", "node name, unique among the primary's replicas; required")
	fs.StringVar(&o.primary, "primary", "", "the primary's --listen address (host:port); required")
	o.addFlags(fs, "address of this node's group-communication listener (host:port)", "127.0.0.1:0")
	markFileFlags(cmd)
	return cmd
}

func (o *replicaOptions) validate() error {
	errs := []error{o.nodeOptions.validate()}
	if o.primary == "" {
		errs = append(errs, errors.New("--primary is required: give the primary's --listen address, e.g. 127.0.0.1:7000 (or set REPLD_PRIMARY)"))
	} else if _, _, err := net.SplitHostPort(o.primary); err != nil {
		errs = append(errs, fmt.Errorf("--primary %q is not host:port (%v); use e.g. 127.0.0.1:7000", o.primary, err))
	}
	return errors.Join(errs...)
}

func runReplica(ctx context.Context, o *replicaOptions, log *zap.Logger) error {
	ncfg := node.Config{}
	ncfg.Replica.Primary = o.primary
	n, g, err := openNode(ctx, &o.nodeOptions, node.RoleReplica, ncfg, log)
	if err != nil {
		return err
	}
	stop, err := o.client.start(&o.nodeOptions, n, func() error { return stopNode(log, n, g) }, log)
	if err != nil {
		return errors.Join(err, stop())
	}
	srv, err := admin.Listen(nodeAdmin(&o.nodeOptions, n, log))
	if err != nil {
		return errors.Join(fmt.Errorf("--admin: %w", err), stop())
	}
	log.Info("replica serving",
		zap.String("name", o.name),
		zap.String("primary", o.primary),
		zap.String("listen", g.Addr().String()),
		zap.String("admin", srv.Addr().String()),
		zap.String("group", o.group),
		zap.Bool("tls", o.tlsCert != ""))
	return errors.Join(serveUntilDone(ctx, srv, log), stop())
}
