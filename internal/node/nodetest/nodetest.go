package nodetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/cluster"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// PrimaryName is the name of the primary node.
const PrimaryName = "primary"

// shutdownTimeout bounds how long stopping an admin server waits for
// requests in progress.
const shutdownTimeout = 10 * time.Second

// Options configures StartCluster. The zero value is a primary and two
// replicas in async mode.
type Options struct {
	// Replicas is how many replicas start with the primary, named r1, r2,
	// …; 0 means 2, a negative number none.
	Replicas int
	// Sync is the primary's sync policy.
	Sync primary.SyncPolicy
	// WaitBound bounds every wait; 0 means 30s.
	WaitBound time.Duration
	// Logger receives every node's messages; nil discards them.
	Logger *zap.Logger
}

// Cluster is a primary and its replicas running in the test's process,
// each with its admin HTTP server.
type Cluster struct {
	t testing.TB
	// C is the replication cluster underneath, for what this package does
	// not wrap (the primary's Go API, waits, fault injection).
	C     *cluster.Cluster
	nodes map[string]*Node
	order []string // primary first, then replicas in order of creation
}

// Node is one node of a Cluster with its admin server. The admin address
// stays the same across restarts.
type Node struct {
	c *Cluster
	// Name is the node's name: PrimaryName or the replica's.
	Name      string
	replica   *cluster.Replica // nil for the primary
	adminAddr string
	srv       *admin.Server
	served    chan error
}

// StartCluster starts a primary and opts.Replicas replicas on loopback
// TCP, every store a badgerstore in a temporary directory, waits until the
// replicas are healthy and returns. Everything is stopped by t's cleanup.
func StartCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	n := opts.Replicas
	if n == 0 {
		n = 2
	}
	c := &Cluster{t: t, nodes: make(map[string]*Node)}
	c.C = cluster.New(t, cluster.Config{
		Badger: true, TCP: true, Sync: opts.Sync, WaitBound: opts.WaitBound, Logger: opts.Logger,
	})
	// Cleanups run last first: the admin servers stop before the nodes.
	t.Cleanup(c.stopAdmins)
	p := &Node{c: c, Name: PrimaryName}
	c.add(p)
	p.serve()
	var names []string
	for i := range max(n, 0) {
		names = append(names, c.AddReplica(fmt.Sprintf("r%d", i+1)).Name)
	}
	c.C.WaitHealthy(names...)
	return c
}

func (c *Cluster) add(n *Node) {
	c.nodes[n.Name] = n
	c.order = append(c.order, n.Name)
}

// stopAdmins stops every admin server, before the nodes stop.
func (c *Cluster) stopAdmins() {
	for _, name := range c.order {
		c.nodes[name].stopAdmin()
	}
}

// AddReplica starts a new replica with an empty store and its admin
// server; it catches up by itself (see Cluster.WaitCaughtUp).
func (c *Cluster) AddReplica(name string) *Node {
	c.t.Helper()
	if c.nodes[name] != nil {
		c.t.Fatalf("nodetest: node %s exists", name)
	}
	n := &Node{c: c, Name: name, replica: c.C.AddReplica(name)}
	c.add(n)
	n.serve()
	return n
}

// Node returns the node named name (PrimaryName for the primary).
func (c *Cluster) Node(name string) *Node {
	c.t.Helper()
	n := c.nodes[name]
	if n == nil {
		c.t.Fatalf("nodetest: no node %s", name)
	}
	return n
}

// Primary returns the primary node.
func (c *Cluster) Primary() *Node { return c.nodes[PrimaryName] }

// Nodes returns every node, the primary first.
func (c *Cluster) Nodes() []*Node {
	out := make([]*Node, len(c.order))
	for i, name := range c.order {
		out[i] = c.nodes[name]
	}
	return out
}

// AdminAddrs returns the admin addresses of every node, the primary
// first: what replctl's --nodes takes.
func (c *Cluster) AdminAddrs() []string {
	out := make([]string, len(c.order))
	for i, name := range c.order {
		out[i] = c.nodes[name].adminAddr
	}
	return out
}

// replicaNames returns the names of the replicas.
func (c *Cluster) replicaNames() []string { return c.order[1:] }

// WaitCaughtUp waits until the named replicas (none named: every running
// one) applied the primary's last transaction.
func (c *Cluster) WaitCaughtUp(names ...string) {
	c.t.Helper()
	if len(names) == 0 {
		for _, name := range c.replicaNames() {
			if c.nodes[name].Running() {
				names = append(names, name)
			}
		}
	}
	c.C.WaitCaughtUp(names...)
}

// Commit commits one transaction through the primary, writing each object
// of objs over its current revision (new objects with serial 0), and
// returns its TID and chain.
func (c *Cluster) Commit(meta storage.TxnMeta, objs map[storage.OID][]byte) storage.Commit {
	c.t.Helper()
	ctx := context.Background()
	p := c.C.Primary
	if p == nil {
		c.t.Fatal("nodetest: Commit while the primary is stopped")
	}
	txn, err := p.Begin(ctx, meta)
	if err != nil {
		c.t.Fatalf("nodetest: begin: %v", err)
	}
	for _, oid := range slices.Sorted(maps.Keys(objs)) {
		if err := txn.Store(ctx, oid, currentSerial(c.t, p, oid), objs[oid]); err != nil {
			c.t.Fatalf("nodetest: store %s: %v", oid, err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		c.t.Fatalf("nodetest: vote: %v", err)
	}
	cm, err := txn.Finish(ctx)
	if err != nil {
		c.t.Fatalf("nodetest: finish: %v", err)
	}
	return cm
}

// Workload commits txns transactions through the primary, each writing
// perTxn objects chosen in turn among objects OIDs (1 to objects), and
// returns their commits. Data depends on the transaction and OID only, so
// two runs write the same bytes.
func (c *Cluster) Workload(txns, perTxn, objects int) []storage.Commit {
	c.t.Helper()
	out := make([]storage.Commit, 0, txns)
	next := 0
	for i := range txns {
		objs := make(map[storage.OID][]byte, perTxn)
		for range perTxn {
			oid := storage.OID(next%objects + 1)
			next++
			objs[oid] = fmt.Appendf(nil, "object %s written by transaction %d", oid, i)
		}
		meta := storage.TxnMeta{User: []byte("nodetest"), Description: fmt.Appendf(nil, "workload %d", i)}
		out = append(out, c.Commit(meta, objs))
	}
	return out
}

// currentSerial is oid's current serial in s, 0 for a new object.
func currentSerial(t testing.TB, s storage.Storage, oid storage.OID) storage.TID {
	t.Helper()
	_, serial, err := s.Load(context.Background(), oid)
	if errors.Is(err, storage.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("nodetest: load %s: %v", oid, err)
	}
	return serial
}

// AdminAddr is the node's admin address (host:port).
func (n *Node) AdminAddr() string { return n.adminAddr }

// IsPrimary reports whether n is the primary.
func (n *Node) IsPrimary() bool { return n.replica == nil }

// Running reports whether the node runs.
func (n *Node) Running() bool {
	if n.IsPrimary() {
		return n.c.C.Primary != nil
	}
	return n.replica.R != nil
}

// Replica returns the running replica (nil for the primary or while
// stopped).
func (n *Node) Replica() *replica.Replica {
	if n.IsPrimary() {
		return nil
	}
	return n.replica.R
}

// Store returns the node's own store while it runs, bypassing the
// replica and fault injection, for checks.
func (n *Node) Store() storage.Storage {
	if n.IsPrimary() {
		return n.c.C.PrimaryFault.Inner()
	}
	return n.replica.Store()
}

// Stop stops the node's admin server and then the node, keeping its data
// and addresses. Stopping a stopped node does nothing.
func (n *Node) Stop() {
	n.c.t.Helper()
	if !n.Running() {
		return
	}
	n.stopAdmin()
	if n.IsPrimary() {
		n.c.C.StopPrimary()
	} else {
		n.replica.Stop()
	}
}

// Start starts a stopped node on its data, and its admin server on the
// same address as before.
func (n *Node) Start() {
	n.c.t.Helper()
	if n.Running() {
		return
	}
	if n.IsPrimary() {
		n.c.C.StartPrimary()
	} else {
		n.replica.Start()
	}
	n.serve()
}

// Restart stops and starts the node.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Stop()
	n.Start()
}

// serve starts the admin server of the running node, wired as repld
// wires it: the primary itself or the replica's read view as the store.
func (n *Node) serve() {
	t := n.c.t
	t.Helper()
	addr := n.adminAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	cfg := admin.Config{Addr: addr, Logger: zap.NewNop()}
	if n.IsPrimary() {
		p := n.c.C.Primary
		cfg.Status = func() any { return p.Status() }
		cfg.Store = p
	} else {
		r := n.replica.R
		cfg.Status = func() any { return r.Status() }
		cfg.Health = func() error {
			if st := r.Status(); st.State == replica.StateQuarantined {
				return fmt.Errorf("replica %s is quarantined", st.Name)
			}
			return nil
		}
		cfg.Store = r.ReadView()
	}
	srv, err := admin.Listen(cfg)
	if err != nil {
		t.Fatalf("nodetest: admin server of %s: %v", n.Name, err)
	}
	n.srv, n.adminAddr, n.served = srv, srv.Addr().String(), make(chan error, 1)
	go func() { n.served <- srv.Serve() }()
}

// stopAdmin shuts the admin server down and waits for Serve to return.
func (n *Node) stopAdmin() {
	if n.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		n.c.t.Errorf("nodetest: stop admin server of %s: %v", n.Name, err)
	}
	if err := <-n.served; err != nil {
		n.c.t.Errorf("nodetest: admin server of %s: %v", n.Name, err)
	}
	n.srv = nil
}

// Divergence injection. Each method works on a stopped replica's store,
// stopping the replica first if it runs and starting it again afterwards.

// tamper runs fn on the replica's store with the replica stopped.
func (n *Node) tamper(what string, fn func(ctx context.Context, s *badgerstore.Store) error) {
	t := n.c.t
	t.Helper()
	if n.IsPrimary() {
		t.Fatalf("nodetest: %s: only a replica's store can be changed under it", what)
	}
	if n.Running() {
		n.Stop()
		defer n.Start()
	}
	n.replica.Prepare(func(s storage.Storage) {
		bs, ok := s.(*badgerstore.Store)
		if !ok {
			t.Fatalf("nodetest: %s: store of %s is a %T, not a badgerstore", what, n.Name, s)
		}
		if err := fn(context.Background(), bs); err != nil {
			t.Fatalf("nodetest: %s on %s: %v", what, n.Name, err)
		}
	})
}

// ReplayFromPrimary copies into the replica's store the primary's
// transactions after the replica's last one, each passed through edit
// first: edit may change the transaction's metadata and records, and
// returns false to leave it out. Each is committed at its TID with the
// chain the replica's store computes, so an edited or missing transaction
// makes the replica's history diverge there, as a replica that applied
// something else would. Stop the replica before the primary commits the
// transactions it is to miss.
func (n *Node) ReplayFromPrimary(edit func(txn *storage.Transaction) bool) {
	n.c.t.Helper()
	p := n.c.C.Primary
	if p == nil {
		n.c.t.Fatal("nodetest: ReplayFromPrimary while the primary is stopped")
	}
	n.tamper("replay from the primary", func(ctx context.Context, s *badgerstore.Store) error {
		last, err := s.LastTransaction(ctx)
		if err != nil {
			return err
		}
		it, err := p.Iterator(ctx, last+1, 0)
		if err != nil {
			return err
		}
		defer it.Close()
		for {
			txn, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if !edit(txn) {
				continue
			}
			if err := commitAt(ctx, s, txn); err != nil {
				return err
			}
		}
	})
}

// CommitExtra commits a transaction of the test's making to the replica's
// store alone, at a TID after the replica's last (txn.TID, or one the
// store chooses when it is 0), and returns it: a transaction no other node
// has.
func (n *Node) CommitExtra(txn storage.Transaction) storage.Commit {
	n.c.t.Helper()
	var cm storage.Commit
	n.tamper("commit an extra transaction", func(ctx context.Context, s *badgerstore.Store) error {
		if txn.TID != 0 {
			if err := commitAt(ctx, s, &txn); err != nil {
				return err
			}
			c, err := s.Chain(ctx, txn.TID)
			cm = storage.Commit{TID: txn.TID, Chain: c}
			return err
		}
		t, err := stage(ctx, s, &txn)
		if err != nil {
			return err
		}
		cm, err = t.Finish(ctx)
		return err
	})
	return cm
}

// CorruptObject replaces the data of oid's current revision in the
// replica's store in place, leaving every transaction and chain value as
// it was: a node whose history agrees with the others but whose state
// does not (a bad disk).
func (n *Node) CorruptObject(oid storage.OID, data []byte) {
	n.c.t.Helper()
	n.tamper("corrupt object "+oid.String(), func(ctx context.Context, s *badgerstore.Store) error {
		_, serial, err := s.Load(ctx, oid)
		if err != nil {
			return err
		}
		return s.OverwriteRevision(ctx, oid, serial, data)
	})
}

// stage begins txn on s and stores its records over their current
// revisions in s, then votes.
func stage(ctx context.Context, s storage.Storage, txn *storage.Transaction) (storage.Txn, error) {
	t, err := s.Begin(ctx, txn.Meta)
	if err != nil {
		return nil, err
	}
	for _, r := range txn.Records {
		_, serial, err := s.Load(ctx, r.OID)
		if errors.Is(err, storage.ErrNotFound) {
			serial, err = 0, nil
		}
		if err == nil {
			err = t.Store(ctx, r.OID, serial, r.Data)
		}
		if err != nil {
			_ = t.Abort(ctx)
			return nil, err
		}
	}
	if err := t.Vote(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// commitAt commits txn to s at txn.TID, with the chain s computes.
func commitAt(ctx context.Context, s storage.Storage, txn *storage.Transaction) error {
	t, err := stage(ctx, s, txn)
	if err != nil {
		return fmt.Errorf("transaction %s: %w", txn.TID, err)
	}
	if _, err := t.FinishAt(ctx, txn.TID, storage.Checksum{}); err != nil {
		_ = t.Abort(ctx)
		return fmt.Errorf("transaction %s: %w", txn.TID, err)
	}
	return nil
}
