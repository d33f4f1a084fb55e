package nodetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/node"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/faultstore"
)

// PrimaryName is the name of the node started as the primary.
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
	// Sync is the sync policy of the primary, and of a replica once
	// promoted.
	Sync primary.SyncPolicy
	// WaitBound bounds every wait; 0 means 30s.
	WaitBound time.Duration
	// Logger receives every node's messages; nil discards them.
	Logger *zap.Logger
}

// Cluster is a primary and its replicas running in the test's process,
// each an internal/node Node with its admin server (control endpoints
// included), so roles change as in production: promote, follow, resync.
type Cluster struct {
	t    testing.TB
	opts Options
	dir  string
	// C is the Cluster itself, for tests written when the waits lived on
	// an inner cluster (c.C.WaitHealthy).
	C     *Cluster
	nodes map[string]*Node
	order []string // in order of creation, the first primary first
	// lastPrimary is the node last seen running as the primary.
	lastPrimary string
}

// Node is one node of a Cluster with its admin server. Its gcs and admin
// addresses stay the same across restarts and role changes.
type Node struct {
	c *Cluster
	// Name is the node's name: PrimaryName or the replica's.
	Name string
	dir  string
	// role is the role the node starts in.
	role      node.Role
	gcsAddr   string
	adminAddr string

	g      *gcs.Node
	n      *node.Node
	srv    *admin.Server
	served chan error

	mu    sync.Mutex
	fault *faultstore.Store // wraps the current store
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
	if opts.WaitBound == 0 {
		opts.WaitBound = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir(), nodes: make(map[string]*Node), lastPrimary: PrimaryName}
	c.C = c
	t.Cleanup(c.stopAll)
	c.newNode(PrimaryName, node.RolePrimary).Start()
	var names []string
	for i := range max(n, 0) {
		names = append(names, c.AddReplica(fmt.Sprintf("r%d", i+1)).Name)
	}
	c.WaitHealthy(names...)
	return c
}

func (c *Cluster) newNode(name string, role node.Role) *Node {
	c.t.Helper()
	if c.nodes[name] != nil {
		c.t.Fatalf("nodetest: node %s exists", name)
	}
	n := &Node{c: c, Name: name, dir: filepath.Join(c.dir, name), role: role}
	c.nodes[name] = n
	c.order = append(c.order, name)
	return n
}

// stopAll stops every node, replicas first; registered as t's cleanup.
func (c *Cluster) stopAll() {
	for _, name := range slices.Backward(c.order) {
		c.nodes[name].Stop()
	}
}

// AddReplica starts a new replica of the current primary with an empty
// store and its admin server; it catches up by itself (see
// Cluster.WaitCaughtUp).
func (c *Cluster) AddReplica(name string) *Node {
	c.t.Helper()
	n := c.newNode(name, node.RoleReplica)
	n.Start()
	return n
}

// Node returns the node named name.
func (c *Cluster) Node(name string) *Node {
	c.t.Helper()
	n := c.nodes[name]
	if n == nil {
		c.t.Fatalf("nodetest: no node %s", name)
	}
	return n
}

// Primary returns the node running as the primary (after a promotion, the
// promoted one; of two, the one with the higher epoch); while none runs,
// the last that did.
func (c *Cluster) Primary() *Node {
	var best *primary.Primary
	for _, name := range c.order {
		if p := c.nodes[name].Primary(); p != nil && (best == nil || p.Epoch() > best.Epoch()) {
			best, c.lastPrimary = p, name
		}
	}
	return c.nodes[c.lastPrimary]
}

// runningPrimary returns the running primary, failing the test if none
// runs.
func (c *Cluster) runningPrimary(what string) *primary.Primary {
	c.t.Helper()
	p := c.Primary().Primary()
	if p == nil {
		c.t.Fatalf("nodetest: %s while no primary runs", what)
	}
	return p
}

// Nodes returns every node in order of creation, the first primary first.
func (c *Cluster) Nodes() []*Node {
	out := make([]*Node, len(c.order))
	for i, name := range c.order {
		out[i] = c.nodes[name]
	}
	return out
}

// AdminAddrs returns the admin addresses of every node in order of
// creation: what replctl's --nodes takes.
func (c *Cluster) AdminAddrs() []string {
	out := make([]string, len(c.order))
	for i, name := range c.order {
		out[i] = c.nodes[name].adminAddr
	}
	return out
}

// wait polls cond until it returns nil, failing the test with its last
// error after the wait bound.
func (c *Cluster) wait(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.WaitBound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodetest: %s: not after %v: %v", what, c.opts.WaitBound, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PrimaryState returns the current primary's registry entry of the named
// replica (state "unknown" if it has none).
func (c *Cluster) PrimaryState(name string) primary.ReplicaStatus {
	if p := c.Primary().Primary(); p != nil {
		for _, r := range p.Status().Replicas {
			if r.Name == name {
				return r
			}
		}
	}
	return primary.ReplicaStatus{Name: name, State: "unknown"}
}

// waitPrimaryState waits until the primary's registry shows every named
// replica in state.
func (c *Cluster) waitPrimaryState(state primary.State, names ...string) {
	c.t.Helper()
	for _, name := range names {
		c.wait(fmt.Sprintf("%s %s on the primary", name, state), func() error {
			if s := c.PrimaryState(name); s.State != state.String() {
				return fmt.Errorf("state %s (quarantine %+v)", s.State, s.Quarantine)
			}
			return nil
		})
	}
}

// WaitHealthy waits until the primary counts every named replica healthy.
func (c *Cluster) WaitHealthy(names ...string) {
	c.t.Helper()
	c.waitPrimaryState(primary.StateHealthy, names...)
}

// WaitPrimaryQuarantined waits until the primary records the replica as
// quarantined.
func (c *Cluster) WaitPrimaryQuarantined(name string) {
	c.t.Helper()
	c.waitPrimaryState(primary.StateQuarantined, name)
}

// WaitCaughtUp waits until the named replicas (none named: every running
// one) applied the primary's last transaction.
func (c *Cluster) WaitCaughtUp(names ...string) {
	c.t.Helper()
	if len(names) == 0 {
		for _, name := range c.order {
			if r := c.nodes[name].Replica(); r != nil {
				names = append(names, name)
			}
		}
	}
	last, err := c.runningPrimary("WaitCaughtUp").LastTransaction(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, name := range names {
		n := c.Node(name)
		c.wait(name+" caught up to "+last.String(), func() error {
			r := n.Replica()
			if r == nil {
				return errors.New("not running as a replica")
			}
			if s := r.Status(); s.LastTID < last {
				return fmt.Errorf("at %s, state %s", s.LastTID, s.State)
			}
			return nil
		})
	}
}

// Commit commits one transaction through the primary, writing each object
// of objs over its current revision (new objects with serial 0), and
// returns its TID and chain.
func (c *Cluster) Commit(meta storage.TxnMeta, objs map[storage.OID][]byte) storage.Commit {
	c.t.Helper()
	ctx := context.Background()
	p := c.runningPrimary("Commit")
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

// GCSAddr is the node's gcs listen address (host:port): what a replica
// follows once this node is the primary.
func (n *Node) GCSAddr() string { return n.gcsAddr }

// IsPrimary reports whether n runs as the primary (or, stopped, would
// start as one).
func (n *Node) IsPrimary() bool {
	if n.n != nil {
		return n.n.Role() == node.RolePrimary
	}
	return n.role == node.RolePrimary
}

// Running reports whether the node runs.
func (n *Node) Running() bool { return n.n != nil }

// Control returns the running node, for its Go API (Promote, Follow, …).
func (n *Node) Control() *node.Node { return n.n }

// Primary returns the running primary (nil in another role or stopped).
func (n *Node) Primary() *primary.Primary {
	if n.n == nil {
		return nil
	}
	return n.n.Primary()
}

// Replica returns the running replica (nil in another role or stopped).
func (n *Node) Replica() *replica.Replica {
	if n.n == nil {
		return nil
	}
	return n.n.Replica()
}

// Store returns the node's own store while it runs, bypassing the
// primary or replica and fault injection, for checks.
func (n *Node) Store() storage.Storage {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fault == nil {
		return nil
	}
	return n.fault.Inner()
}

// Faults returns the fault injector wrapping the node's current store
// (a new one each time the store reopens): set faults on it to make the
// node's disk fail.
func (n *Node) Faults() *faultstore.Store {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fault
}

// Stop stops the node's admin server and then the node, keeping its data
// and addresses. Stopping a stopped node does nothing.
func (n *Node) Stop() {
	n.c.t.Helper()
	if !n.Running() {
		return
	}
	if r := n.n.Role(); r != "" {
		n.role = r
	}
	n.stopAdmin()
	if err := n.n.Close(); err != nil {
		n.c.t.Errorf("nodetest: close %s: %v", n.Name, err)
	}
	n.g.Close()
	n.n, n.g = nil, nil
}

// Start starts a stopped node on its data in the role it had (a replica
// follows the current primary), and its admin server on the same address
// as before.
func (n *Node) Start() {
	n.c.t.Helper()
	if n.Running() {
		return
	}
	n.start(n.role)
}

// StartAsReplica starts a stopped node, whatever its role was, as a
// replica of the current primary: an old primary coming back after a
// promotion.
func (n *Node) StartAsReplica() {
	n.c.t.Helper()
	if n.Running() {
		n.c.t.Fatalf("nodetest: StartAsReplica of running node %s", n.Name)
	}
	n.start(node.RoleReplica)
}

// Restart stops and starts the node.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Stop()
	n.Start()
}

// Promote makes the replica the primary through its control operation
// (what POST /promote does).
func (n *Node) Promote() {
	n.c.t.Helper()
	if _, err := n.running("promote").Promote(context.Background()); err != nil {
		n.c.t.Fatalf("nodetest: promote %s: %v", n.Name, err)
	}
	n.c.lastPrimary = n.Name
}

// Follow makes the node a replica of the primary node p (what POST
// /follow does).
func (n *Node) Follow(p *Node) {
	n.c.t.Helper()
	if _, err := n.running("follow").Follow(context.Background(), p.gcsAddr); err != nil {
		n.c.t.Fatalf("nodetest: %s follow %s: %v", n.Name, p.Name, err)
	}
}

func (n *Node) running(what string) *node.Node {
	n.c.t.Helper()
	if n.n == nil {
		n.c.t.Fatalf("nodetest: %s: node %s is stopped", what, n.Name)
	}
	return n.n
}

// start starts the gcs node, the node in role and the admin server.
func (n *Node) start(role node.Role) {
	c := n.c
	t := c.t
	t.Helper()
	var follow string
	if role == node.RoleReplica {
		follow = c.Primary().gcsAddr
	}
	n.g = c.gcsNode(n.Name, n.gcsAddr)
	n.gcsAddr = n.g.Addr().String()
	log := c.opts.Logger.With(zap.String("node", n.Name))
	cfg := node.Config{
		Name: n.Name, DataDir: n.dir, GCS: n.g, Logger: log,
		OpenStore: func(ctx context.Context) (storage.Storage, error) {
			s, err := openStore(ctx, n.dir)
			if err != nil {
				return nil, err
			}
			f := faultstore.New(s)
			n.mu.Lock()
			n.fault = f
			n.mu.Unlock()
			return f, nil
		},
		RemoveStore: func() error { return os.RemoveAll(storeDir(n.dir)) },
		Primary:     primary.Config{Sync: c.opts.Sync, HeartbeatInterval: 50 * time.Millisecond},
	}
	cfg.Replica.Primary = follow
	cfg.Replica.JoinBackoffMin, cfg.Replica.JoinBackoffMax = 5*time.Millisecond, 100*time.Millisecond
	nd, err := node.Open(context.Background(), cfg, role)
	if err != nil {
		n.g.Close()
		n.g = nil
		t.Fatalf("nodetest: start %s as %s: %v", n.Name, role, err)
	}
	n.n, n.role = nd, role
	if role == node.RolePrimary {
		c.lastPrimary = n.Name
	}
	n.serve()
}

// gcsNode starts a gcs node at addr (a free loopback port if empty) with
// the short timeouts of tests.
func (c *Cluster) gcsNode(name, addr string) *gcs.Node {
	c.t.Helper()
	tc := tcptransport.DefaultConfig()
	tc.Address = addr
	if tc.Address == "" {
		tc.Address = "127.0.0.1:0"
	}
	layer, err := tcptransport.Listen(tc)
	if err != nil {
		c.t.Fatalf("nodetest: listen for %s: %v", name, err)
	}
	gc := gcs.DefaultConfig(name)
	gc.HeartbeatInterval = 20 * time.Millisecond
	gc.FailureTimeout = 500 * time.Millisecond
	gc.ReconnectMin = 5 * time.Millisecond
	gc.ReconnectMax = 50 * time.Millisecond
	g, err := gcs.NewNode(gc, layer)
	if err != nil {
		c.t.Fatalf("nodetest: gcs node %s: %v", name, err)
	}
	return g
}

// storeDir is where a node's badgerstore lives in its directory.
func storeDir(dir string) string { return filepath.Join(dir, "store") }

// openStore opens the badgerstore of the node in dir (without fsync: the
// tests crash no machine).
func openStore(ctx context.Context, dir string) (*badgerstore.Store, error) {
	s, err := badgerstore.Open(ctx, badgerstore.Config{Dir: storeDir(dir), NoSync: true})
	if err != nil {
		return nil, fmt.Errorf("nodetest: open badgerstore in %s: %w", dir, err)
	}
	return s, nil
}

// serve starts the admin server of the running node, wired as repld
// wires it, control endpoints included.
func (n *Node) serve() {
	t := n.c.t
	t.Helper()
	addr := n.adminAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	srv, err := admin.Listen(admin.Config{
		Addr: addr, Logger: zap.NewNop(),
		Status: n.n.Status, Health: n.n.Health, CurrentStore: n.n.Store, Control: n.n,
	})
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

// Divergence injection. Each method works on a stopped node's store,
// stopping the node first if it runs and starting it again afterwards in
// the same role. On the primary it makes the primary the odd one out (a
// bad disk under it, or a transaction its replicas never got).

// tamper runs fn on the node's store with the node stopped.
func (n *Node) tamper(what string, fn func(ctx context.Context, s *badgerstore.Store) error) {
	t := n.c.t
	t.Helper()
	if n.Running() {
		n.Stop()
		defer n.Start()
	}
	ctx := context.Background()
	s, err := openStore(ctx, n.dir)
	if err != nil {
		t.Fatalf("nodetest: %s: %v", what, err)
	}
	err = fn(ctx, s)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("nodetest: %s on %s: %v", what, n.Name, err)
	}
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
	if n.IsPrimary() {
		n.c.t.Fatalf("nodetest: ReplayFromPrimary on the primary %s", n.Name)
	}
	p := n.c.runningPrimary("ReplayFromPrimary")
	n.tamper("replay from the primary", func(ctx context.Context, s *badgerstore.Store) error {
		last, err := s.LastTransaction(ctx)
		if err != nil {
			return err
		}
		for txn, err := range storage.Transactions(ctx, p, last+1, 0) {
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
		return nil
	})
}

// CommitExtra commits a transaction of the test's making to the node's
// store alone (a replica's, or the primary's behind its replicas' backs), at a TID after the replica's last (txn.TID, or one the
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
// node's store in place, leaving every transaction and chain value as
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
