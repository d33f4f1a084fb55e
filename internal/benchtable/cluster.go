package benchtable

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// pollInterval is how often the runner looks at the primary's registry
// while it waits for replicas to become healthy.
const pollInterval = 10 * time.Millisecond

// cluster is a primary and its replicas in this process.
type cluster struct {
	dir   string
	log   *zap.Logger
	pnode *gcs.Node
	p     *primary.Primary
	// pstore is the primary's store, which p owns; the rows read its sync
	// rounds.
	pstore *badgerstore.Store
	reps   []*replicaNode
}

// replicaNode is one running replica.
type replicaNode struct {
	name  string
	node  *gcs.Node
	rep   *replica.Replica
	store *badgerstore.Store // rep's store, which rep owns
}

func (r *replicaNode) close() error { return errors.Join(r.rep.Close(), r.node.Close()) }

func newGCSNode(name string) (*gcs.Node, error) {
	tcfg := tcptransport.DefaultConfig()
	tcfg.Address = "127.0.0.1:0"
	layer, err := tcptransport.Listen(tcfg)
	if err != nil {
		return nil, fmt.Errorf("listen for %s: %w", name, err)
	}
	node, err := gcs.NewNode(gcs.DefaultConfig(name), layer)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("gcs node %s: %w", name, err), layer.Close())
	}
	return node, nil
}

func openBadger(ctx context.Context, dir string, log *zap.Logger) (*badgerstore.Store, error) {
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: filepath.Join(dir, "store"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w", dir, err)
	}
	return s, nil
}

// startCluster starts a primary in sync mode (k=1, blocking when short) and n replicas, and waits until every replica is healthy.
func startCluster(ctx context.Context, dir string, mode primary.Mode, n int, log *zap.Logger) (_ *cluster, err error) {
	c := &cluster{dir: dir, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.close())
		}
	}()
	store, err := openBadger(ctx, filepath.Join(dir, "primary"), log.Named("primary.store"))
	if err != nil {
		return nil, err
	}
	if c.pnode, err = newGCSNode("primary"); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	c.p, err = primary.Open(ctx, primary.Config{
		Name:              "primary",
		DataDir:           filepath.Join(dir, "primary"),
		Store:             store,
		Node:              c.pnode,
		Sync:              primary.SyncPolicy{Mode: mode, Replicas: 1, Timeout: 30 * time.Second, WhenShort: primary.Block},
		HeartbeatInterval: 100 * time.Millisecond,
		Logger:            log.Named("primary"),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open primary: %w", err), store.Close())
	}
	c.pstore = store
	for i := range n {
		if _, err := c.startReplica(ctx, fmt.Sprintf("r%d", i+1)); err != nil {
			return nil, err
		}
	}
	return c, c.waitHealthy(ctx)
}

// startReplica starts (or restarts, with its data) the replica name.
func (c *cluster) startReplica(ctx context.Context, name string) (*replicaNode, error) {
	data := filepath.Join(c.dir, name)
	store, err := openBadger(ctx, data, c.log.Named(name+".store"))
	if err != nil {
		return nil, err
	}
	node, err := newGCSNode(name)
	if err != nil {
		return nil, errors.Join(err, store.Close())
	}
	rep, err := replica.Open(ctx, replica.Config{
		Name:           name,
		DataDir:        data,
		Store:          store,
		Node:           node,
		Primary:        c.pnode.Addr().String(),
		JoinBackoffMin: 10 * time.Millisecond,
		Logger:         c.log.Named(name),
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open replica %s: %w", name, err), store.Close(), node.Close())
	}
	r := &replicaNode{name: name, node: node, rep: rep, store: store}
	c.reps = append(c.reps, r)
	return r, nil
}

// stopReplica closes the running replica r, keeping its data.
func (c *cluster) stopReplica(r *replicaNode) error {
	for i, x := range c.reps {
		if x == r {
			c.reps = append(c.reps[:i], c.reps[i+1:]...)
			break
		}
	}
	return r.close()
}

// waitHealthy waits until the primary counts every running replica as
// healthy (live, not catching up).
func (c *cluster) waitHealthy(ctx context.Context) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		healthy := 0
		for _, r := range c.p.Status().Replicas {
			if r.State == primary.StateHealthy.String() {
				healthy++
			}
		}
		if healthy >= len(c.reps) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d replicas to be healthy (%d are): %w", len(c.reps), healthy, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// waitApplied waits until every running replica applied tid.
func (c *cluster) waitApplied(ctx context.Context, tid storage.TID) error {
	for _, r := range c.reps {
		if err := r.rep.WaitFor(ctx, tid); err != nil {
			return fmt.Errorf("replica %s: %w", r.name, err)
		}
	}
	return nil
}

// syncMeter reads the sync rounds of the primary's and the running
// replicas' stores.
func (c *cluster) syncMeter() syncMeter {
	m := syncMeter{primary: c.pstore}
	for _, r := range c.reps {
		m.replicas = append(m.replicas, r.store)
	}
	return m
}

// close stops the replicas, then the primary, then the gcs nodes.
func (c *cluster) close() error {
	var errs []error
	for _, r := range c.reps {
		errs = append(errs, r.close())
	}
	c.reps = nil
	if c.p != nil {
		errs = append(errs, c.p.Close())
	}
	if c.pnode != nil {
		errs = append(errs, c.pnode.Close())
	}
	return errors.Join(errs...)
}
