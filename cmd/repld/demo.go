package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/faultstore"
)

// demoTimeout bounds the whole demo; it normally takes a few seconds.
const demoTimeout = 50 * time.Second

// demoPoll is how often the demo looks at the nodes' status while waiting.
const demoPoll = 20 * time.Millisecond

func newDemoCmd(g *globalOptions) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a primary and two replicas in one process and show a quarantine",
		Long: `Run a primary and two replicas in this process, on loopback TCP with
temporary directories. The demo commits a workload that includes objects of
several megabytes (many fragments each), makes one replica's disk fail ("no
space left on device") so that it is quarantined while the primary goes on
committing, prints the cluster status as a table and checks that the healthy
replica's chain equals the primary's.

It exits 0 when every step held and non-zero, saying which step failed,
otherwise. The nodes' logs are off unless --log-level (or REPLD_LOG_LEVEL) is
given.`,
		Example: `  repld demo
  make demo`,
		Args: cobra.NoArgs,
		RunE: g.runE(nil, func(cmd *cobra.Command, log *zap.Logger) error {
			// The demo's output is its report; the nodes' logs (the
			// quarantine it provokes is logged as an error) would only
			// muddle it.
			log = quietUnlessAsked(cmd, log)
			dir, err := os.MkdirTemp("", "repld-demo-")
			if err != nil {
				return err
			}
			if !keep {
				defer os.RemoveAll(dir)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), demoTimeout)
			defer cancel()
			if err := runDemo(ctx, cmd.OutOrStdout(), dir, log); err != nil {
				return fmt.Errorf("demo failed: %w", err)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directories (their path is printed)")
	return cmd
}

// demoNode is one node of the demo cluster.
type demoNode struct {
	name  string
	node  *gcs.Node
	fault *faultstore.Store // replicas only
	rep   *replica.Replica  // replicas only
}

// demoCluster is the primary and the replicas the demo runs.
type demoCluster struct {
	log    *zap.Logger
	p      *primary.Primary
	pnode  *gcs.Node
	r1, r2 *demoNode
}

func (c *demoCluster) close() error {
	var errs []error
	for _, r := range []*demoNode{c.r1, c.r2} {
		if r != nil {
			errs = append(errs, r.rep.Close(), r.node.Close())
		}
	}
	if c.p != nil {
		errs = append(errs, c.p.Close())
	}
	if c.pnode != nil {
		errs = append(errs, c.pnode.Close())
	}
	return errors.Join(errs...)
}

// runDemo runs the demo with its data under dir, writing its report to out.
func runDemo(ctx context.Context, out io.Writer, dir string, log *zap.Logger) (err error) {
	fmt.Fprintf(out, "repld demo: a primary and two replicas on loopback TCP, data in %s\n\n", dir)
	c := &demoCluster{log: log}
	defer func() { err = errors.Join(err, c.close()) }()

	step := func(format string, args ...any) { fmt.Fprintf(out, "• "+format+"\n", args...) }
	if err := c.start(ctx, dir); err != nil {
		return err
	}
	step("started primary (group address %s) and replicas r1 and r2 (sync: applied, k=1, degrade when short)", c.pnode.Addr())

	if err := c.waitHealthy(ctx, c.r1, c.r2); err != nil {
		return err
	}
	step("both replicas caught up and live")

	small, err := commitObjects(ctx, c.p, 40, 1000)
	if err != nil {
		return fmt.Errorf("small transactions: %w", err)
	}
	var large workloadResult
	sizes := []int{2 << 20, 5 << 20, 9 << 20}
	for _, size := range sizes {
		if large, err = commitObjects(ctx, c.p, 1, size); err != nil {
			return fmt.Errorf("object of %d MiB: %w", size>>20, err)
		}
	}
	frags := func(n int) int {
		return (n + fragment.DefaultMaxFragment - fragment.HeaderSize - 1) / (fragment.DefaultMaxFragment - fragment.HeaderSize)
	}
	step("committed %d small transactions and objects of 2, 5 and 9 MiB (about %d, %d and %d fragments each)",
		small.Committed, frags(sizes[0]), frags(sizes[1]), frags(sizes[2]))
	if err := c.waitApplied(ctx, large.Last.TID, c.r1, c.r2); err != nil {
		return err
	}
	step("both replicas applied everything up to %s", large.Last.TID)

	// r2's disk fills up: its next commit fails as badger would report it.
	c.r2.fault.FailNext(faultstore.OpFinishAt, syscall.ENOSPC, 1)
	failed, err := commitObjects(ctx, c.p, 1, 1000)
	if err != nil {
		return fmt.Errorf("commit during the failure: %w", err)
	}
	q, err := c.waitQuarantined(ctx, c.r2)
	if err != nil {
		return err
	}
	step("injected %q into r2's next commit (%s): r2 is quarantined on both sides: %s", syscall.ENOSPC.Error(), failed.Last.TID, q)

	start := time.Now()
	after, err := commitObjects(ctx, c.p, 30, 1000)
	if err != nil {
		return fmt.Errorf("commits after the quarantine: %w", err)
	}
	step("the primary kept committing: %d more transactions in %v with r2 quarantined", after.Committed, time.Since(start).Round(time.Millisecond))

	last := after.Last.TID
	if err := c.waitApplied(ctx, last, c.r1); err != nil {
		return err
	}
	want, err := c.p.Chain(ctx, last)
	if err != nil {
		return fmt.Errorf("primary chain at %s: %w", last, err)
	}
	got, err := c.r1.rep.ReadView().Chain(ctx, last)
	if err != nil {
		return fmt.Errorf("r1 chain at %s: %w", last, err)
	}
	if got != want {
		return fmt.Errorf("r1's chain at %s is %s, the primary's is %s", last, got, want)
	}
	step("r1's chain at the primary's last TID %s equals the primary's: %s", last, want)
	r2last, err := c.r2.rep.ReadView().LastTransaction(ctx)
	if err != nil {
		return fmt.Errorf("r2 last transaction: %w", err)
	}
	if r2last >= failed.Last.TID {
		return fmt.Errorf("quarantined r2 has transaction %s, at or after the one it failed (%s)", r2last, failed.Last.TID)
	}

	fmt.Fprintln(out)
	if err := c.printStatus(out); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nOK: every check held")
	return nil
}

func (c *demoCluster) start(ctx context.Context, dir string) error {
	store, err := badgerstore.Open(ctx, badgerstore.Config{Dir: storeDir(filepath.Join(dir, "primary")), Logger: c.log.Named("primary.store")})
	if err != nil {
		return err
	}
	if c.pnode, err = newGCSNode("primary", "127.0.0.1:0", nil, 0, c.log.Named("primary")); err != nil {
		return errors.Join(err, store.Close())
	}
	c.p, err = primary.Open(ctx, primary.Config{
		Name:    "primary",
		DataDir: filepath.Join(dir, "primary"),
		Store:   store,
		Node:    c.pnode,
		Sync: primary.SyncPolicy{
			Mode: primary.Applied, Replicas: 1, Timeout: 10 * time.Second, WhenShort: primary.Degrade,
		},
		HeartbeatInterval: 100 * time.Millisecond,
		Logger:            c.log,
	})
	if err != nil {
		return errors.Join(fmt.Errorf("open primary: %w", err), store.Close())
	}
	if c.r1, err = c.startReplica(ctx, dir, "r1"); err != nil {
		return err
	}
	c.r2, err = c.startReplica(ctx, dir, "r2")
	return err
}

func (c *demoCluster) startReplica(ctx context.Context, dir, name string) (*demoNode, error) {
	data := filepath.Join(dir, name)
	inner, err := badgerstore.Open(ctx, badgerstore.Config{Dir: storeDir(data), Logger: c.log.Named(name + ".store")})
	if err != nil {
		return nil, err
	}
	fault := faultstore.New(inner)
	node, err := newGCSNode(name, "127.0.0.1:0", nil, 0, c.log.Named(name))
	if err != nil {
		return nil, errors.Join(err, fault.Close())
	}
	rep, err := replica.Open(ctx, replica.Config{
		Name:    name,
		DataDir: data,
		Store:   fault,
		Node:    node,
		Primary: c.pnode.Addr().String(),
		Logger:  c.log.Named(name),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open replica %s: %w", name, err), fault.Close(), node.Close())
	}
	return &demoNode{name: name, node: node, fault: fault, rep: rep}, nil
}

// waitUntil polls cond until it holds or ctx ends; what names the wait in
// the error.
func waitUntil(ctx context.Context, what string, cond func() bool) error {
	t := time.NewTicker(demoPoll)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s: %w", what, context.Cause(ctx))
		case <-t.C:
		}
	}
	return nil
}

func (c *demoCluster) registry(name string) primary.ReplicaStatus {
	for _, r := range c.p.Status().Replicas {
		if r.Name == name {
			return r
		}
	}
	return primary.ReplicaStatus{}
}

func (c *demoCluster) waitHealthy(ctx context.Context, nodes ...*demoNode) error {
	for _, n := range nodes {
		if err := waitUntil(ctx, n.name+" is healthy", func() bool {
			return c.registry(n.name).State == primary.StateHealthy.String()
		}); err != nil {
			return err
		}
	}
	return nil
}

func (c *demoCluster) waitApplied(ctx context.Context, tid storage.TID, nodes ...*demoNode) error {
	for _, n := range nodes {
		if err := n.rep.WaitFor(ctx, tid); err != nil {
			return fmt.Errorf("waiting for %s to apply %s: %w", n.name, tid, err)
		}
	}
	return nil
}

// waitQuarantined waits until both the primary's registry and the replica
// itself say the replica is quarantined, and returns the primary's reason.
func (c *demoCluster) waitQuarantined(ctx context.Context, n *demoNode) (string, error) {
	err := waitUntil(ctx, n.name+" is quarantined on the primary and on itself", func() bool {
		return c.registry(n.name).State == primary.StateQuarantined.String() && replicaQuarantined(n.rep.Status())
	})
	if err != nil {
		return "", err
	}
	if q := c.registry(n.name).Quarantine; q != nil {
		return q.Reason, nil
	}
	return "", nil
}

// printStatus prints the cluster as the primary and each replica see it.
func (c *demoCluster) printStatus(out io.Writer) error {
	st := c.p.Status()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tLAST TID\tLAG (TXNS)\tLAG (S)\tQUARANTINE")
	state := "serving"
	if st.Sync.Degraded {
		state = "degraded"
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t-\t-\t-\n", st.Name, st.Role, state, st.LastTID)
	for _, r := range st.Replicas {
		reason := "-"
		if r.Quarantine != nil {
			reason = r.Quarantine.Reason
		}
		fmt.Fprintf(tw, "%s\treplica\t%s\t%s\t%d\t%.3f\t%s\n", r.Name, r.State, r.LastAppliedTID, r.LagTransactions, r.LagSeconds, reason)
	}
	return tw.Flush()
}
