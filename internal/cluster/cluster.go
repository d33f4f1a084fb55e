package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/repld/repld/internal/datadir"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
)

// Config configures a Cluster. The zero value is an in-memory cluster of
// memstores with async sync.
type Config struct {
	// Badger stores data in badgerstores in temporary directories instead
	// of memstores.
	Badger bool
	// BadgerSync makes the badgerstores sync every commit (for
	// benchmarks); otherwise they run with NoSync.
	BadgerSync bool
	// TCP runs the nodes on loopback TCP instead of the in-memory network;
	// the link faults (DropLinks, Partition) need the in-memory network.
	TCP bool
	// Sync is the primary's sync policy.
	Sync primary.SyncPolicy
	// DirectReplicaStores gives each replica its store itself, as a node
	// does, instead of a faultstore around it (which hides a
	// badgerstore's restorer): benchmarks then measure the path
	// production takes. Replica.Fault is nil.
	DirectReplicaStores bool
	// HeartbeatInterval is the primary's; 0 means 50ms.
	HeartbeatInterval time.Duration
	// Fragment is the fragment size of every node; 0 means the default.
	Fragment int
	// WaitBound bounds every wait of the helpers; 0 means 30s.
	WaitBound time.Duration
	// Logger receives every node's messages; nil discards them.
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 50 * time.Millisecond
	}
	if c.WaitBound == 0 {
		c.WaitBound = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// primaryAddr is the primary's address on the in-memory network.
const primaryAddr = "primary"

// Cluster is a primary and its replicas in one process.
type Cluster struct {
	t   testing.TB
	cfg Config
	dir string
	// Net is the in-memory network (nil with Config.TCP).
	Net *memtransport.Network

	// Primary is the running primary (nil while stopped).
	Primary *primary.Primary
	// PrimaryFault wraps the primary's local store: set faults on it to
	// make the primary's disk fail.
	PrimaryFault *faultstore.Store
	pstore       storage.Storage // a memstore kept across restarts
	pnode        *gcs.Node
	paddr        string
	replicas     map[string]*Replica
}

// Replica is one replica node of a Cluster.
type Replica struct {
	c    *Cluster
	Name string
	// Fault wraps the replica's store: set faults on it to make the
	// replica's disk fail (nil with Config.DirectReplicaStores).
	Fault *faultstore.Store
	store storage.Storage // the store the replica runs on, inside Fault
	// R is the running replica (nil while stopped).
	R       *replica.Replica
	dataDir string
	mem     storage.Storage // a memstore kept across restarts
	node    *gcs.Node
	addr    string
}

// New starts a primary on an empty store. Everything is stopped by t's
// cleanup.
func New(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	cfg = cfg.withDefaults()
	c := &Cluster{t: t, cfg: cfg, dir: t.TempDir(), replicas: make(map[string]*Replica)}
	if !cfg.TCP {
		n, err := memtransport.NewNetwork(memtransport.Config{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		c.Net = n
	}
	t.Cleanup(c.close)
	c.StartPrimary()
	return c
}

// close stops every node; registered as t's cleanup.
func (c *Cluster) close() {
	for _, r := range c.replicas {
		r.Stop()
	}
	c.StopPrimary()
	if c.Net != nil {
		c.Net.Close()
	}
	for _, s := range c.memstores() {
		s.Close()
	}
}

// memstores returns the memstores the nodes kept open across restarts.
func (c *Cluster) memstores() []storage.Storage {
	var out []storage.Storage
	if c.pstore != nil {
		out = append(out, c.pstore)
	}
	for _, r := range c.replicas {
		if r.mem != nil {
			out = append(out, r.mem)
		}
	}
	return out
}

// node starts a gcs node named name, at address addr on the in-memory
// network or at a free loopback port.
func (c *Cluster) node(name, addr string) *gcs.Node {
	c.t.Helper()
	var layer gcs.StreamLayer
	var err error
	if c.cfg.TCP {
		tc := tcptransport.DefaultConfig()
		tc.Address = addr
		if tc.Address == "" {
			tc.Address = "127.0.0.1:0"
		}
		layer, err = tcptransport.Listen(tc)
	} else {
		layer, err = c.Net.Listen(addr)
	}
	if err != nil {
		c.t.Fatalf("cluster: listen for %s: %v", name, err)
	}
	gc := gcs.DefaultConfig(name)
	gc.HeartbeatInterval = 20 * time.Millisecond
	gc.FailureTimeout = 500 * time.Millisecond
	gc.ReconnectMin = 5 * time.Millisecond
	gc.ReconnectMax = 50 * time.Millisecond
	if c.cfg.Fragment > gc.MaxMessage {
		gc.MaxMessage = c.cfg.Fragment
	}
	n, err := gcs.NewNode(gc, layer)
	if err != nil {
		c.t.Fatalf("cluster: gcs node %s: %v", name, err)
	}
	return n
}

// openStore opens the store of a node whose data lives in dir (badger), or
// returns mem (memstore) made on first use.
func (c *Cluster) openStore(dir string, mem *storage.Storage) storage.Storage {
	c.t.Helper()
	if c.cfg.Badger {
		s, err := badgerstore.Open(context.Background(), badgerstore.Config{
			Dir: filepath.Join(dir, "store"), NoSync: !c.cfg.BadgerSync,
		})
		if err != nil {
			c.t.Fatalf("cluster: open badgerstore in %s: %v", dir, err)
		}
		return s
	}
	if *mem == nil {
		s, err := memstore.New(memstore.Config{})
		if err != nil {
			c.t.Fatal(err)
		}
		*mem = s
	}
	return keepOpen{*mem}
}

// keepOpen lets a node close its memstore without losing it, so the node
// can restart on the same data.
type keepOpen struct{ storage.Storage }

// Close does nothing: the memstore lives as long as the Cluster.
func (keepOpen) Close() error { return nil }

// StartPrimary starts the primary on its data (after StopPrimary).
func (c *Cluster) StartPrimary() {
	c.t.Helper()
	dir := filepath.Join(c.dir, "primary")
	addr := c.paddr
	if addr == "" && !c.cfg.TCP {
		addr = primaryAddr
	}
	c.pnode = c.node("primary", addr)
	c.paddr = c.pnode.Addr().String()
	c.PrimaryFault = faultstore.New(c.openStore(dir, &c.pstore))
	p, err := primary.Open(context.Background(), primary.Config{
		Name: "primary", DataDir: dir, Store: c.PrimaryFault, Node: c.pnode,
		Sync: c.cfg.Sync, HeartbeatInterval: c.cfg.HeartbeatInterval, Fragment: c.cfg.Fragment,
		Logger: c.cfg.Logger.With(zap.String("node", "primary")),
	})
	if err != nil {
		c.pnode.Close()
		c.t.Fatalf("cluster: open primary: %v", err)
	}
	c.Primary = p
}

// StopPrimary closes the primary and its node, keeping its data.
func (c *Cluster) StopPrimary() {
	if c.Primary == nil {
		return
	}
	if err := c.Primary.Close(); err != nil {
		c.t.Errorf("cluster: close primary: %v", err)
	}
	c.pnode.Close()
	c.Primary, c.pnode = nil, nil
}

// RestartPrimary stops and starts the primary on the same data and address.
func (c *Cluster) RestartPrimary() {
	c.t.Helper()
	c.StopPrimary()
	c.StartPrimary()
}

// SetPrimaryEpoch persists epoch as the stopped primary's epoch, as a
// promotion (higher) or a test playing a deposed primary (lower) would.
func (c *Cluster) SetPrimaryEpoch(epoch uint64) {
	c.t.Helper()
	if c.Primary != nil {
		c.t.Fatal("cluster: SetPrimaryEpoch while the primary runs")
	}
	if err := datadir.WriteEpoch(filepath.Join(c.dir, "primary"), epoch); err != nil {
		c.t.Fatal(err)
	}
}

// AddReplica starts a new replica with an empty store.
func (c *Cluster) AddReplica(name string) *Replica {
	c.t.Helper()
	r := c.NewReplica(name)
	r.Start()
	return r
}

// NewReplica makes a replica with an empty store without starting it, so a
// test can Prepare its store first.
func (c *Cluster) NewReplica(name string) *Replica {
	c.t.Helper()
	if c.replicas[name] != nil {
		c.t.Fatalf("cluster: replica %s exists", name)
	}
	r := &Replica{c: c, Name: name, dataDir: filepath.Join(c.dir, name)}
	c.replicas[name] = r
	return r
}

// Prepare runs fn on the stopped replica's store, to give it a history of
// the test's making.
func (r *Replica) Prepare(fn func(storage.Storage)) {
	r.c.t.Helper()
	if r.R != nil {
		r.c.t.Fatalf("cluster: Prepare of running replica %s", r.Name)
	}
	s := r.c.openStore(r.dataDir, &r.mem)
	fn(s)
	if err := s.Close(); err != nil {
		r.c.t.Fatal(err)
	}
}

// Replica returns the replica named name.
func (c *Cluster) Replica(name string) *Replica {
	r := c.replicas[name]
	if r == nil {
		c.t.Fatalf("cluster: no replica %s", name)
	}
	return r
}

// Start starts a stopped replica on its data.
func (r *Replica) Start() {
	c := r.c
	c.t.Helper()
	if r.R != nil {
		return
	}
	addr := r.addr
	if addr == "" && !c.cfg.TCP {
		addr = r.Name
	}
	r.node = c.node(r.Name, addr)
	r.addr = r.node.Addr().String()
	r.store = c.openStore(r.dataDir, &r.mem)
	var store storage.Storage = r.store
	if !c.cfg.DirectReplicaStores {
		r.Fault = faultstore.New(r.store)
		store = r.Fault
	}
	rep, err := replica.Open(context.Background(), replica.Config{
		Name: r.Name, DataDir: r.dataDir, Store: store, Node: r.node, Primary: c.paddr,
		Fragment: c.cfg.Fragment, JoinBackoffMin: 5 * time.Millisecond, JoinBackoffMax: 100 * time.Millisecond,
		Logger: c.cfg.Logger.With(zap.String("node", r.Name)),
	})
	if err != nil {
		r.node.Close()
		c.t.Fatalf("cluster: open replica %s: %v", r.Name, err)
	}
	r.R = rep
}

// Stop closes the replica and its node, keeping its data.
func (r *Replica) Stop() {
	if r.R == nil {
		return
	}
	if err := r.R.Close(); err != nil {
		r.c.t.Errorf("cluster: close replica %s: %v", r.Name, err)
	}
	r.node.Close()
	r.R, r.node = nil, nil
}

// Restart stops and starts the replica on its data.
func (r *Replica) Restart() {
	r.c.t.Helper()
	r.Stop()
	r.Start()
}

// Store returns the replica's local store, bypassing faults and the
// replica (for comparisons). A badgerstore is open only while the replica
// runs; a memstore stays readable after Stop.
func (r *Replica) Store() storage.Storage { return r.store }

// DropLinks breaks the connections between the primary and the replica
// once; gcs reconnects and retransmits.
func (r *Replica) DropLinks() int { return r.c.Net.CloseLinks(r.c.paddr, r.addr) }

// Partition cuts the replica off the primary until Heal.
func (r *Replica) Partition() { r.c.Net.Partition(r.c.paddr, r.addr) }

// Heal ends a Partition.
func (r *Replica) Heal() { r.c.Net.Heal(r.c.paddr, r.addr) }

// Waiting.

// wait polls cond until it returns nil, failing the test with its last
// error after the wait bound.
func (c *Cluster) wait(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(c.cfg.WaitBound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster: timed out waiting for %s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// PrimaryState returns the primary's registry entry for name.
func (c *Cluster) PrimaryState(name string) primary.ReplicaStatus {
	for _, s := range c.Primary.Status().Replicas {
		if s.Name == name {
			return s
		}
	}
	return primary.ReplicaStatus{Name: name, State: "unknown"}
}

// WaitHealthy waits until the primary counts each replica as healthy.
func (c *Cluster) WaitHealthy(names ...string) {
	c.t.Helper()
	for _, name := range names {
		c.wait(name+" healthy", func() error {
			if s := c.PrimaryState(name); s.State != primary.StateHealthy.String() {
				return fmt.Errorf("state %s", s.State)
			}
			return nil
		})
	}
}

// WaitCaughtUp waits until each replica applied the primary's last
// transaction.
func (c *Cluster) WaitCaughtUp(names ...string) {
	c.t.Helper()
	last, err := c.Primary.LastTransaction(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	for _, name := range names {
		r := c.Replica(name)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WaitBound)
		err := r.R.WaitFor(ctx, last)
		cancel()
		if err != nil {
			c.t.Fatalf("cluster: %s catching up to %s: %v (status %+v)", name, last, err, r.R.Status())
		}
	}
}

// WaitQuarantined waits until the replica is quarantined on both sides.
func (c *Cluster) WaitQuarantined(name string) {
	c.t.Helper()
	r := c.Replica(name)
	c.wait(name+" quarantined on both sides", func() error {
		p := c.PrimaryState(name)
		s := r.R.Status()
		if p.State != primary.StateQuarantined.String() || s.State != replica.StateQuarantined {
			return fmt.Errorf("primary says %s, replica says %s", p.State, s.State)
		}
		return nil
	})
}

// WaitPrimaryQuarantined waits until the primary's registry has the
// replica quarantined.
func (c *Cluster) WaitPrimaryQuarantined(name string) {
	c.t.Helper()
	c.wait(name+" quarantined by the primary", func() error {
		if s := c.PrimaryState(name); s.State != primary.StateQuarantined.String() {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
}

// CheckEqual fails the test unless each replica's store equals the
// primary's transaction by transaction.
func (c *Cluster) CheckEqual(names ...string) {
	c.t.Helper()
	for _, name := range names {
		if err := Equal(context.Background(), c.Primary, c.Replica(name).Store()); err != nil {
			c.t.Fatalf("cluster: %s differs from the primary: %v", name, err)
		}
	}
}
