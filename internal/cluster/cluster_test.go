package cluster

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/storagetest"
	"github.com/repld/repld/wire"
)

// TestConformanceWithReplicas runs the conformance suite against a primary
// with two replicas attached in applied mode, and checks after each subtest
// that both replicas equal the primary.
func TestConformanceWithReplicas(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{Open: func(t *testing.T) storage.Storage {
		c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 2}})
		rs := []*Replica{c.AddReplica("r1"), c.AddReplica("r2")}
		c.WaitHealthy(names(rs...)...)
		t.Cleanup(func() {
			if _, err := c.Primary.LastTransaction(context.Background()); err != nil {
				return // the subtest closed the primary
			}
			c.WaitCaughtUp(names(rs...)...)
			c.CheckEqual(names(rs...)...)
		})
		return c.Primary
	}})
}

// TestReplicaReadView runs the read half of the suite against a replica's
// read-only view fed through a primary.
func TestReplicaReadView(t *testing.T) {
	storagetest.RunReadOnly(t, storagetest.ReadOnlyHarness{
		Open: func(t *testing.T) (storage.Storage, storage.Storage, func(context.Context, storage.TID) error) {
			c := New(t, Config{})
			r := c.AddReplica("r1")
			c.WaitHealthy("r1")
			return c.Primary, r.R.ReadView(), r.R.WaitFor
		},
	})
}

// TestDroppedConnections commits from several goroutines while every
// replica's connection is dropped every 20 commits; afterwards every replica
// equals the primary, and so does a new replica built from empty.
func TestDroppedConnections(t *testing.T) {
	c := New(t, Config{})
	rs := []*Replica{c.AddReplica("r1"), c.AddReplica("r2"), c.AddReplica("r3")}
	c.WaitHealthy(names(rs...)...)
	const committers, perCommitter = 4, 100
	var commits sync.WaitGroup
	var mu sync.Mutex
	total, broken := 0, 0
	errs := make(chan error, committers)
	for w := range committers {
		commits.Go(func() {
			var serial storage.TID
			for i := range perCommitter {
				cm, err := commitObj(t.Context(), c.Primary, storage.OID(w+1), serial, bytes.Repeat([]byte{byte(i)}, 10+i*37))
				if err != nil {
					errs <- err
					return
				}
				serial = cm.TID
				mu.Lock()
				total++
				drop := total%20 == 0
				mu.Unlock()
				if drop {
					for _, r := range rs {
						n := r.DropLinks()
						mu.Lock()
						broken += n
						mu.Unlock()
					}
				}
			}
		})
	}
	commits.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if broken == 0 {
		t.Fatal("no connection was broken")
	}
	c.WaitCaughtUp(names(rs...)...)
	c.CheckEqual(names(rs...)...)
	fresh := c.AddReplica("fresh")
	c.WaitHealthy("fresh")
	c.WaitCaughtUp("fresh")
	c.CheckEqual("fresh")
	for _, r := range append(rs, fresh) {
		if s := r.R.Status(); s.Quarantine != nil {
			t.Errorf("%s quarantined: %+v", r.Name, s.Quarantine)
		}
	}
}

// TestObjectSizes replicates objects of 0 bytes, around one fragment and
// 64 MiB, and refuses a larger one before applying it locally.
func TestObjectSizes(t *testing.T) {
	c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: time.Minute}})
	c.AddReplica("r1")
	c.WaitHealthy("r1")
	// The store message of an object of n bytes is n plus a head of h
	// bytes; an object of body-h bytes fills exactly one fragment.
	codec, err := wire.NewCodec(wire.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := codec.AppendHead(nil, &wire.Store{Epoch: 1, Seq: 1, OID: 1, Data: make([]byte, 100000)})
	if err != nil {
		t.Fatal(err)
	}
	one := fragment.DefaultMaxFragment - fragment.HeaderSize - len(head)
	sizes := []int{0, 1, one - 1, one, one + 1, 2*one + 7, 64 << 20}
	r := c.Replica("r1")
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(j*7 + i)
		}
		oid := storage.OID(100 + i)
		cm := mustCommit(t, c.Primary, oid, 0, data)
		got, serial, err := r.R.ReadView().Load(t.Context(), oid)
		if err != nil || serial != cm.TID || !bytes.Equal(got, data) {
			t.Fatalf("object of %d bytes on the replica: %d bytes, serial %s, %v; want serial %s", n, len(got), serial, err, cm.TID)
		}
	}
	_, err = commitObj(t.Context(), c.Primary, 99, 0, make([]byte, 64<<20+1))
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("commit of 64 MiB + 1 = %v; want ErrTooLarge", err)
	}
	if _, _, err := c.Primary.Load(t.Context(), 99); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("refused object on the primary: %v", err)
	}
	c.WaitCaughtUp("r1")
	c.CheckEqual("r1")
}

// TestSyncModes checks what each mode guarantees when Finish returns.
func TestSyncModes(t *testing.T) {
	c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: time.Minute}})
	r := c.AddReplica("r1")
	c.WaitHealthy("r1")
	var serial storage.TID
	for i := range 30 {
		data := []byte{byte(i), 1, 2, 3}
		cm := mustCommit(t, c.Primary, 1, serial, data)
		serial = cm.TID
		// applied: readable on the replica the moment Finish returned.
		got, s, err := r.R.ReadView().Load(t.Context(), 1)
		if err != nil || s != cm.TID || !bytes.Equal(got, data) {
			t.Fatalf("applied commit %s: replica has %x at %s, %v", cm.TID, got, s, err)
		}
	}
	// received: the primary's registry has the acknowledgement.
	received := primary.WithSync(t.Context(), primary.SyncPolicy{Mode: primary.Received, Timeout: time.Minute})
	cm, err := commitObj(received, c.Primary, 2, 0, []byte("r"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.PrimaryState("r1").LastReceivedTID; got < cm.TID {
		t.Fatalf("received commit %s returned with the replica at %s", cm.TID, got)
	}
	// async: commits go on while every replica is down.
	r.Stop()
	c.wait("r1 gone", func() error {
		if s := c.PrimaryState("r1").State; s == primary.StateHealthy.String() {
			return errors.New("still healthy")
		}
		return nil
	})
	async := primary.WithSync(t.Context(), primary.SyncPolicy{Mode: primary.Async})
	for i := range 20 {
		if _, err := commitObj(async, c.Primary, storage.OID(10+i), 0, []byte("a")); err != nil {
			t.Fatalf("async commit with no replica: %v", err)
		}
	}
	// block with no healthy replica: ErrNotReplicated, durable locally.
	block := primary.WithSync(t.Context(), primary.SyncPolicy{Mode: primary.Applied, Timeout: 50 * time.Millisecond})
	cm, err = commitObj(block, c.Primary, 50, 0, []byte("b"))
	if !errors.Is(err, primary.ErrNotReplicated) || cm.TID == 0 {
		t.Fatalf("blocking commit with no replica = %+v, %v", cm, err)
	}
	if _, s, err := c.Primary.Load(t.Context(), 50); err != nil || s != cm.TID {
		t.Fatalf("not-replicated commit not durable locally: %s, %v", s, err)
	}
	if st := c.Primary.Status(); !st.Sync.Degraded {
		t.Fatalf("status with no healthy replica: %+v", st.Sync)
	}
	// The replica comes back and catches up.
	r.Start()
	c.WaitHealthy("r1")
	c.WaitCaughtUp("r1")
	c.CheckEqual("r1")
	if st := c.Primary.Status(); st.Sync.Degraded {
		t.Fatalf("status with the replica back: %+v", st.Sync)
	}
}

// TestQuarantine: a replica whose storage fails on vote or finish is
// quarantined on both sides, the primary goes on committing with the
// healthy replica, and the quarantine survives restarts of both.
func TestQuarantine(t *testing.T) {
	for _, op := range []faultstore.Op{faultstore.OpVote, faultstore.OpFinishAt} {
		t.Run(op.String(), func(t *testing.T) {
			c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: time.Minute}})
			bad, good := c.AddReplica("bad"), c.AddReplica("good")
			c.WaitHealthy("bad", "good")
			for i := range 5 {
				mustCommit(t, c.Primary, storage.OID(i+1), 0, []byte("before"))
			}
			c.WaitCaughtUp("bad", "good")
			bad.Fault.FailAlways(op, errors.New("no space left on device"))
			cm := mustCommit(t, c.Primary, 100, 0, []byte("fails on bad"))
			c.WaitQuarantined("bad")
			q := c.PrimaryState("bad").Quarantine
			if q == nil || q.Code != wire.FailureStorage.String() || q.TID != cm.TID || !strings.Contains(q.Reason, "no space") {
				t.Fatalf("primary's quarantine record = %+v; want a storage failure at %s", q, cm.TID)
			}
			for i := range 20 {
				mustCommit(t, c.Primary, storage.OID(200+i), 0, []byte("after"))
			}
			c.WaitCaughtUp("good")
			c.CheckEqual("good")
			last, _ := bad.R.ReadView().LastTransaction(t.Context())
			if last >= cm.TID {
				t.Fatalf("quarantined replica applied up to %s", last)
			}

			bad.Fault.Clear()
			c.RestartPrimary()
			bad.Restart()
			good.Restart()
			c.WaitHealthy("good")
			c.WaitQuarantined("bad")
			mustCommit(t, c.Primary, 300, 0, []byte("after restarts"))
			c.WaitCaughtUp("good")
			c.CheckEqual("good")
			if got := c.PrimaryState("bad").Quarantine; got == nil || got.Reason != q.Reason {
				t.Fatalf("after restarts the quarantine is %+v; want %+v", got, q)
			}
		})
	}
}

// TestDivergence: replicas whose history differs from the primary's are
// quarantined at hello with a reason naming the TID.
func TestDivergence(t *testing.T) {
	c := New(t, Config{})
	var commits []storage.Commit
	for i := range 10 {
		commits = append(commits, mustCommit(t, c.Primary, storage.OID(i+1), 0, []byte{byte(i)}))
	}
	txns := history(t, c.Primary)

	// changed: the primary's history with one record changed.
	changed := c.NewReplica("changed")
	changed.Prepare(func(s storage.Storage) {
		for i, tx := range txns {
			if i == 4 {
				tx.Records[0].Data = []byte("changed")
			}
			restore(t, s, tx)
		}
	})
	// extra: the primary's history and one transaction more.
	extra := c.NewReplica("extra")
	extraTID := commits[len(commits)-1].TID + 1
	extra.Prepare(func(s storage.Storage) {
		for _, tx := range txns {
			restore(t, s, tx)
		}
		restore(t, s, storage.Transaction{TID: extraTID, Records: []storage.Record{{OID: 999, Data: []byte("mine")}}})
	})
	changed.Start()
	extra.Start()
	// Only the primary records a divergence: the replica's own history is
	// consistent, and nothing tells it otherwise.
	c.WaitPrimaryQuarantined("changed")
	c.WaitPrimaryQuarantined("extra")
	last := commits[len(commits)-1].TID
	for name, want := range map[string]string{
		"changed": "chain differs at tid " + last.String(),
		"extra":   "replica has tid " + extraTID.String() + " the primary does not have",
	} {
		q := c.PrimaryState(name).Quarantine
		if q == nil || q.Code != primary.CodeDivergent || !strings.Contains(q.Reason, want) {
			t.Errorf("%s: quarantine %+v; want a divergence naming %q", name, q, want)
		}
	}
}

// TestFencing: a replica that has seen epoch E+1 refuses the messages of a
// primary of epoch E.
func TestFencing(t *testing.T) {
	c := New(t, Config{HeartbeatInterval: time.Hour})
	r := c.AddReplica("r1")
	c.WaitHealthy("r1")
	mustCommit(t, c.Primary, 1, 0, []byte("epoch 1"))
	c.WaitCaughtUp("r1")

	// A promotion: the same data, epoch 2.
	c.StopPrimary()
	c.SetPrimaryEpoch(2)
	c.StartPrimary()
	c.WaitHealthy("r1")
	mustCommit(t, c.Primary, 2, 0, []byte("epoch 2"))
	c.WaitCaughtUp("r1")
	if e := r.R.Status().Epoch; e != 2 {
		t.Fatalf("replica epoch after the promotion = %d; want 2", e)
	}
	before, _ := r.R.ReadView().LastTransaction(t.Context())

	// The deposed primary comes back with epoch 1.
	c.StopPrimary()
	c.SetPrimaryEpoch(1)
	c.StartPrimary()
	c.WaitPrimaryQuarantined("r1")
	if q := c.PrimaryState("r1").Quarantine; q.Code != primary.CodeNewerEpoch {
		t.Fatalf("quarantine = %+v; want %s", q, primary.CodeNewerEpoch)
	}
	refused := r.R.Status().Counters.RefusedEpoch
	mustCommit(t, c.Primary, 3, 0, []byte("epoch 1 again"))
	// The transaction, sent whole as one txn message, is refused (no
	// heartbeats run).
	c.wait("the replica to refuse the old epoch", func() error {
		if got := r.R.Status().Counters.RefusedEpoch; got < refused+1 {
			return errors.New("not yet")
		}
		return nil
	})
	if after, _ := r.R.ReadView().LastTransaction(t.Context()); after != before {
		t.Fatalf("replica applied %s from the deposed primary", after)
	}
	if _, _, err := r.R.ReadView().Load(t.Context(), 3); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("object from the deposed primary on the replica: %v", err)
	}
}

// history returns every transaction of s.
func history(t *testing.T, s storage.Storage) []storage.Transaction {
	t.Helper()
	it, err := s.Iterator(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []storage.Transaction
	for {
		tx, err := it.Next(t.Context())
		if err != nil {
			return out
		}
		out = append(out, *tx)
	}
}

// restore commits tx into s at its TID, without a chain check.
func restore(t *testing.T, s storage.Storage, tx storage.Transaction) {
	t.Helper()
	ctx := t.Context()
	txn, err := s.Begin(ctx, tx.Meta)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tx.Records {
		_, serial, err := s.Load(ctx, r.OID)
		if errors.Is(err, storage.ErrNotFound) {
			serial = 0
		}
		if err := txn.Store(ctx, r.OID, serial, r.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.FinishAt(ctx, tx.TID, storage.Checksum{}); err != nil {
		t.Fatal(err)
	}
}

// workload commits from committers goroutines until stop is closed, each on
// its own object, and returns the first error.
func workload(ctx context.Context, s storage.Storage, committers int, stop <-chan struct{}) (wait func() error) {
	var wg sync.WaitGroup
	errs := make(chan error, committers)
	for w := range committers {
		wg.Go(func() {
			var serial storage.TID
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				cm, err := commitObj(ctx, s, storage.OID(1000+w), serial, bytes.Repeat([]byte{byte(i)}, 1+i%300))
				if err != nil {
					errs <- err
					return
				}
				serial = cm.TID
			}
		})
	}
	return func() error {
		wg.Wait()
		close(errs)
		return <-errs
	}
}

// waitCommits waits until the primary committed n more transactions.
func (c *Cluster) waitCommits(n uint64) {
	c.t.Helper()
	start := c.Primary.Status().Counters.Commits
	c.wait("more commits", func() error {
		if c.Primary.Status().Counters.Commits < start+n {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestRestartDuringWorkload restarts badger-backed replicas while
// committers run; each catches up from its own last TID and equals the
// primary.
func TestRestartDuringWorkload(t *testing.T) {
	c := New(t, Config{Badger: true})
	rs := []*Replica{c.AddReplica("r1"), c.AddReplica("r2")}
	c.WaitHealthy("r1", "r2")
	stop := make(chan struct{})
	wait := workload(t.Context(), c.Primary, 4, stop)
	for range 3 {
		for _, r := range rs {
			c.waitCommits(30)
			r.Restart()
		}
	}
	c.waitCommits(30)
	close(stop)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	c.WaitHealthy("r1", "r2")
	c.WaitCaughtUp("r1", "r2")
	c.CheckEqual("r1", "r2")
}

// TestPartition: a replica cut off longer than the failure timeout is
// disconnected, commits go on, and after the partition heals it rejoins,
// catches up and equals the primary.
func TestPartition(t *testing.T) {
	c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: time.Minute}})
	c.AddReplica("r1")
	r2 := c.AddReplica("r2")
	c.WaitHealthy("r1", "r2")
	stop := make(chan struct{})
	wait := workload(t.Context(), c.Primary, 2, stop)
	c.waitCommits(20)
	c.wait("r2 to acknowledge", func() error {
		if c.PrimaryState("r2").LastAppliedTID == 0 {
			return errors.New("nothing applied")
		}
		return nil
	})
	r2.Partition()
	c.wait("r2 disconnected", func() error {
		if s := c.PrimaryState("r2").State; s != primary.StateDisconnected.String() {
			return errors.New(s)
		}
		return nil
	})
	c.waitCommits(50)
	if s := c.PrimaryState("r2"); s.LagTransactions < 50 || s.LagSeconds <= 0 {
		t.Fatalf("lag of the partitioned replica = %d transactions, %v s; want at least 50 and more than 0", s.LagTransactions, s.LagSeconds)
	}
	r2.Heal()
	c.WaitHealthy("r2")
	c.waitCommits(20)
	close(stop)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	c.WaitCaughtUp("r1", "r2")
	c.CheckEqual("r1", "r2")
}

// TestGroupCommitOrder: with badgerstores that sync (group commit lets
// Finish calls return out of order), replicas still get finishes in TID
// order and equal the primary.
func TestGroupCommitOrder(t *testing.T) {
	c := New(t, Config{Badger: true, BadgerSync: true, Sync: primary.SyncPolicy{Mode: primary.Received, Replicas: 1, Timeout: time.Minute}})
	c.AddReplica("r1")
	c.WaitHealthy("r1")
	stop := make(chan struct{})
	wait := workload(t.Context(), c.Primary, 8, stop)
	c.waitCommits(300)
	close(stop)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	c.WaitCaughtUp("r1")
	c.CheckEqual("r1")
	if q := c.Replica("r1").R.Status().Quarantine; q != nil {
		t.Fatalf("replica quarantined: %+v", q)
	}
}

// TestPrimaryStorageFailure: a transaction the primary's own store fails at
// vote or finish is aborted on the replicas too, and later commits
// replicate normally.
func TestPrimaryStorageFailure(t *testing.T) {
	c := New(t, Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: time.Minute}})
	c.AddReplica("r1")
	c.WaitHealthy("r1")
	mustCommit(t, c.Primary, 1, 0, []byte("one"))
	for _, op := range []faultstore.Op{faultstore.OpVote, faultstore.OpFinishAt} {
		c.PrimaryFault.FailNext(op, nil, 1)
		if _, err := commitObj(t.Context(), c.Primary, 2, 0, []byte("lost")); !errors.Is(err, faultstore.ErrInjected) {
			t.Fatalf("commit with a failing %s = %v; want the injected error", op, err)
		}
	}
	mustCommit(t, c.Primary, 3, 0, []byte("three"))
	c.WaitCaughtUp("r1")
	c.CheckEqual("r1")
	if _, _, err := c.Replica("r1").R.ReadView().Load(t.Context(), 2); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failed transaction's object on the replica: %v", err)
	}
}
