package primary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/storagetest"
	"github.com/repld/repld/wire"
	"go.uber.org/zap/zaptest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{Open: func(t *testing.T) storage.Storage {
		p, _ := newTestNet(t).openPrimary(newMem(t), t.TempDir(), nil)
		return p
	}})
}

// TestConformanceReplicated runs the suite with a replica attached that
// acknowledges, in applied mode, and checks after each subtest that the
// replica received exactly the primary's history.
func TestConformanceReplicated(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{Open: func(t *testing.T) storage.Storage {
		n := newTestNet(t)
		p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) {
			c.Sync = SyncPolicy{Mode: Applied, Replicas: 1, WhenShort: Block}
		})
		f := n.join("r1", true)
		f.hello(1, 0, storage.Checksum{})
		waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })
		t.Cleanup(func() {
			if p.ctx.Err() == nil {
				f.check(p)
			}
		})
		return p
	}})
}

func TestSyncWithoutReplicas(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), nil)
	ctx := t.Context()

	// Async: no replica needed.
	if _, err := commitOne(ctx, p, 1, 0, []byte("a")); err != nil {
		t.Fatalf("async commit: %v", err)
	}
	// Block: times out, but the commit is durable locally.
	block := WithSync(ctx, SyncPolicy{Mode: Applied, Replicas: 1, Timeout: 50 * time.Millisecond, WhenShort: Block})
	c, err := commitOne(block, p, 2, 0, []byte("b"))
	if !errors.Is(err, ErrNotReplicated) || c.TID == 0 {
		t.Fatalf("blocking commit with no replica = %v, %v; want a commit and ErrNotReplicated", c, err)
	}
	if data, serial, err := p.Load(ctx, 2); err != nil || serial != c.TID || string(data) != "b" {
		t.Fatalf("Load after ErrNotReplicated = %q, %s, %v", data, serial, err)
	}
	// Degrade: returns at once (an hour-long timeout would hang the test).
	degrade := WithSync(ctx, SyncPolicy{Mode: Received, Replicas: 2, Timeout: time.Hour, WhenShort: Degrade})
	if _, err := commitOne(degrade, p, 3, 0, []byte("c")); err != nil {
		t.Fatalf("degrading commit: %v", err)
	}
	if st := p.Status(); st.Sync.Degraded || st.Counters.NotReplicated != 1 || st.Counters.Commits != 3 {
		t.Fatalf("status = %+v; async primary is not degraded, one commit not replicated, three commits", st)
	}
}

func TestDegradedStatus(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) {
		c.Sync = SyncPolicy{Mode: Applied, Replicas: 1, Timeout: time.Hour, WhenShort: Degrade}
	})
	if _, err := commitOne(t.Context(), p, 1, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); !st.Sync.Degraded || st.Sync.Healthy != 0 || st.Sync.Mode != "applied" {
		t.Fatalf("sync status = %+v; want degraded", st.Sync)
	}
	f := n.join("r1", true)
	f.hello(1, 0, storage.Checksum{})
	waitFor(t, "not degraded", func() bool { return !p.Status().Sync.Degraded })
	if _, err := commitOne(t.Context(), p, 2, 0, []byte("y")); err != nil {
		t.Fatal(err)
	}
	f.check(p)
}

// TestSyncNeedsAcks: a healthy replica that never acknowledges makes an
// applied commit time out, and an acknowledging one satisfies it.
func TestSyncNeedsAcks(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) {
		c.Sync = SyncPolicy{Mode: Applied, Replicas: 1, Timeout: 100 * time.Millisecond}
	})
	silent := n.join("silent", false)
	silent.hello(1, 0, storage.Checksum{})
	waitFor(t, "silent healthy", func() bool { r, _ := replicaState(p, "silent"); return r.State == "healthy" })
	if _, err := commitOne(t.Context(), p, 1, 0, []byte("x")); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("commit with a silent replica: %v; want ErrNotReplicated", err)
	}
	acker := n.join("acker", true)
	acker.hello(1, 0, storage.Checksum{})
	waitFor(t, "acker healthy", func() bool { r, _ := replicaState(p, "acker"); return r.State == "healthy" })
	c, err := commitOne(WithSync(t.Context(), SyncPolicy{Mode: Applied, Timeout: waitBound}), p, 2, 0, []byte("y"))
	if err != nil {
		t.Fatalf("commit with an acknowledging replica: %v", err)
	}
	if r, _ := replicaState(p, "acker"); r.LastAppliedTID < c.TID {
		t.Fatalf("acker applied %s after Finish of %s returned", r.LastAppliedTID, c.TID)
	}
	acker.check(p)
	silent.check(p)
}

// TestStoreTooLarge: data that cannot be sent is refused before the local
// store sees it.
func TestStoreTooLarge(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) { c.Fragment = 64 })
	ctx := t.Context()
	big := bytes.Repeat([]byte{7}, 65535*(64-5)+1)
	txn, err := p.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(ctx, 1, 0, big); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Store of %d bytes with 64-byte fragments = %v; want ErrTooLarge", len(big), err)
	}
	if err := txn.Store(ctx, 2, 0, []byte("small")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Load(ctx, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load of the refused object = %v; want ErrNotFound", err)
	}
}

// TestCatchUpUnderLoad: replicas that join while committers run receive
// every transaction exactly once, in order: the replay, then the live
// stream, with in-flight transactions replayed whole.
//
// Over badgerstore, a commit becomes visible in the store only once it is
// durable, after its finish went out: a replica going live while commits
// are in flight must still get them replayed (and nothing may wait for a
// sync that nobody starts).
func TestCatchUpUnderLoad(t *testing.T) {
	t.Run("memstore", func(t *testing.T) { testCatchUpUnderLoad(t, newMem(t)) })
	t.Run("badgerstore", func(t *testing.T) {
		s, err := badgerstore.Open(t.Context(), badgerstore.Config{Dir: t.TempDir(), Logger: zaptest.NewLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		testCatchUpUnderLoad(t, s)
	})
}

func testCatchUpUnderLoad(t *testing.T, store storage.Storage) {
	n := newTestNet(t)
	p, _ := n.openPrimary(store, t.TempDir(), nil)
	ctx := t.Context()
	for i := range 500 {
		if _, err := commitOne(ctx, p, storage.OID(1000+i), 0, bytes.Repeat([]byte{byte(i)}, i*5)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			var serial storage.TID
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := commitOne(ctx, p, storage.OID(w+1), serial, []byte{byte(i)})
				if err != nil {
					errs <- err
					return
				}
				serial = c.TID
			}
		})
	}
	fakes := []*fake{n.join("r1", true), n.join("r2", false)}
	for _, f := range fakes {
		f.hello(1, 0, storage.Checksum{})
	}
	for _, f := range fakes {
		waitFor(t, f.name+" healthy", func() bool { r, _ := replicaState(p, f.name); return r.State == "healthy" })
	}
	// Let live traffic flow before stopping.
	start := p.Status().Counters.Commits
	waitFor(t, "more commits", func() bool { return p.Status().Counters.Commits >= start+200 || len(errs) > 0 })
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, f := range fakes {
		f.check(p)
	}
	if got := p.Status().Counters.Replayed; got < 2*500 {
		t.Errorf("replayed %d transactions; want at least the 500 committed before each replica joined", got)
	}
}

// TestHelloDivergence: replicas whose history differs are quarantined with
// a reason naming the TID, and stay quarantined across a primary restart.
func TestHelloDivergence(t *testing.T) {
	n := newTestNet(t)
	store := newMem(t)
	dir := t.TempDir()
	p, node := n.openPrimary(store, dir, nil)
	ctx := t.Context()
	var commits []storage.Commit
	for i := range 5 {
		c, err := commitOne(ctx, p, storage.OID(i+1), 0, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		commits = append(commits, c)
	}
	wrong := commits[2].Chain
	wrong[0] ^= 1
	extra := commits[4].TID + 1
	cases := []struct {
		name  string
		epoch uint64
		tid   storage.TID
		chain storage.Checksum
		code  string
		want  string
	}{
		{"changed", 1, commits[2].TID, wrong, CodeDivergent, "chain differs at tid " + commits[2].TID.String()},
		{"extra", 1, extra, commits[4].Chain, CodeDivergent, "replica has tid " + extra.String() + " the primary does not have"},
		{"newer", 2, commits[4].TID, commits[4].Chain, CodeNewerEpoch, "epoch 2"},
	}
	for _, c := range cases {
		f := n.join(c.name, true)
		f.hello(c.epoch, c.tid, c.chain)
	}
	good := n.join("good", true)
	good.hello(1, commits[1].TID, commits[1].Chain)
	for _, c := range cases {
		waitFor(t, c.name+" quarantined", func() bool { r, _ := replicaState(p, c.name); return r.State == "quarantined" })
		r, _ := replicaState(p, c.name)
		if r.Quarantine.Code != c.code || !strings.Contains(r.Quarantine.Reason, c.want) {
			t.Errorf("%s: quarantine %+v; want code %s and a reason containing %q", c.name, r.Quarantine, c.code, c.want)
		}
	}
	waitFor(t, "good healthy", func() bool { r, _ := replicaState(p, "good"); return r.State == "healthy" })
	if got := p.Status().Counters.Quarantines; got != 3 {
		t.Errorf("quarantines counter = %d; want 3", got)
	}

	// Restart the primary on the same store: quarantines survive, the
	// rest start disconnected.
	inner := p.inner
	p.inner = nopClose{inner}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	node.Close()
	p2, _ := n.openPrimary(inner, dir, nil)
	for _, c := range cases {
		if r, _ := replicaState(p2, c.name); r.State != "quarantined" || r.Quarantine == nil || !strings.Contains(r.Quarantine.Reason, c.want) {
			t.Errorf("after restart %s is %+v", c.name, r)
		}
	}
	if r, _ := replicaState(p2, "good"); r.State != "disconnected" {
		t.Errorf("after restart good is %q; want disconnected", r.State)
	}
}

// nopClose keeps a store open across a Primary's Close, to restart a
// primary on the same in-memory store.
type nopClose struct{ storage.Storage }

func (nopClose) Close() error { return nil }

// TestFailureReport: a replica reporting failure is quarantined; commits go
// on; it stays quarantined when it says hello again.
func TestFailureReport(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) {
		c.Sync = SyncPolicy{Mode: Applied, Replicas: 1, Timeout: waitBound}
	})
	f := n.join("r1", true)
	f.hello(1, 0, storage.Checksum{})
	waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })
	c, err := commitOne(t.Context(), p, 1, 0, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sender.Send(t.Context(), f.to, &wire.Failure{Seq: 9, TID: uint64(c.TID), Code: 1, Text: "disk full"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "r1 quarantined", func() bool { r, _ := replicaState(p, "r1"); return r.State == "quarantined" })
	r, _ := replicaState(p, "r1")
	if r.Quarantine.Code != "storage" || r.Quarantine.TID != c.TID || !strings.Contains(r.Quarantine.Reason, "disk full") {
		t.Fatalf("quarantine = %+v", r.Quarantine)
	}
	// Commits go on, degraded (degrade would return at once; block waits).
	short := WithSync(t.Context(), SyncPolicy{Mode: Applied, Timeout: time.Hour, WhenShort: Degrade})
	if _, err := commitOne(short, p, 2, 0, []byte("y")); err != nil {
		t.Fatal(err)
	}
	f.hello(1, c.TID, c.Chain)
	if _, err := commitOne(short, p, 3, 0, []byte("z")); err != nil {
		t.Fatal(err)
	}
	if r, _ := replicaState(p, "r1"); r.State != "quarantined" {
		t.Fatalf("after a new hello r1 is %s", r.State)
	}
}

// TestLocalStoreFailure: a store may be broadcast before the local store
// writes it, so a local failure must fail the transaction: Vote reports it
// even if the caller ignores it, the replicas never commit it, and the
// next transaction commits everywhere. It runs with a small first store
// (the transaction would go out whole) and a large one (it streams).
func TestLocalStoreFailure(t *testing.T) {
	for _, size := range []int{4, wholeMax} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			n := newTestNet(t)
			fs := faultstore.New(newMem(t))
			p, _ := n.openPrimary(fs, t.TempDir(), nil)
			f := n.join("r1", true)
			f.hello(1, 0, storage.Checksum{})
			waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })
			ctx := t.Context()

			injected := errors.New("injected: no space left on device")
			fs.FailNext(faultstore.OpStore, injected, 1)
			txn, err := p.Begin(ctx, storage.TxnMeta{})
			if err != nil {
				t.Fatal(err)
			}
			if err := txn.Store(ctx, 1, 0, bytes.Repeat([]byte("x"), size)); !errors.Is(err, injected) {
				t.Fatalf("Store = %v; want the injected failure", err)
			}
			if err := txn.Store(ctx, 2, 0, []byte("after")); !errors.Is(err, injected) {
				t.Fatalf("Store after a failed store = %v; want the injected failure again", err)
			}
			if err := txn.Vote(ctx); !errors.Is(err, injected) {
				t.Fatalf("Vote after a failed store = %v; want the injected failure", err)
			}
			if _, err := txn.Finish(ctx); !errors.Is(err, storage.ErrTxnState) {
				t.Fatalf("Finish after a failed vote = %v; want ErrTxnState", err)
			}
			if _, err := commitOne(ctx, p, 3, 0, []byte("next")); err != nil {
				t.Fatalf("commit after the failed transaction: %v", err)
			}
			for _, oid := range []storage.OID{1, 2} {
				if _, _, err := p.Load(ctx, oid); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("Load(%s) = %v; want ErrNotFound", oid, err)
				}
			}
			f.check(p) // r1 received exactly the primary's history: one transaction
		})
	}
}

// TestWholeAndStreamed: a transaction whose data fits in wholeMax reaches
// the replicas as one txn message at its finish, and one aborted before
// that sends nothing; the store that takes a transaction past wholeMax
// makes it stream: begin, the stores kept so far, then every store, vote
// and finish (or abort) as they happen.
func TestWholeAndStreamed(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), nil)
	f := n.join("r1", true)
	f.hello(1, 0, storage.Checksum{})
	waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })
	ctx := t.Context()
	large := bytes.Repeat([]byte("L"), wholeMax)

	oid := storage.OID(100)
	run := func(finish bool, data ...[]byte) uint64 {
		t.Helper()
		tx, err := p.Begin(ctx, storage.TxnMeta{User: []byte("test")})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range data {
			oid++
			if err := tx.Store(ctx, oid, 0, d); err != nil {
				t.Fatal(err)
			}
		}
		seq := tx.(*txn).seq
		if !finish {
			if err := tx.Abort(ctx); err != nil {
				t.Fatal(err)
			}
			return seq
		}
		if err := tx.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	whole := run(true, []byte("a"), []byte("b"))
	dropped := run(false, []byte("c"))
	streamed := run(true, []byte("d"), large, []byte("e"))
	aborted := run(false, large)
	if _, err := commitOne(ctx, p, 1, 0, []byte("last")); err != nil {
		t.Fatal(err)
	}
	f.check(p)
	want := []string{
		fmt.Sprintf("txn %d", whole),
		fmt.Sprintf("begin %d", streamed), fmt.Sprintf("store %d", streamed), fmt.Sprintf("store %d", streamed),
		fmt.Sprintf("store %d", streamed), fmt.Sprintf("vote %d", streamed), fmt.Sprintf("finish %d", streamed),
		fmt.Sprintf("begin %d", aborted), fmt.Sprintf("store %d", aborted), fmt.Sprintf("abort %d", aborted),
		fmt.Sprintf("txn %d", aborted+1),
	}
	if got := f.sentMethods(); !slices.Equal(got, want) {
		t.Fatalf("r1 received %q; want %q (seq %d aborted unsent)", got, want, dropped)
	}
}

// TestTxnAsksForReceived: a whole transaction asks the replicas for a
// received acknowledgement only when its commit waits for one (sync mode
// received, from the configuration or WithSync).
func TestTxnAsksForReceived(t *testing.T) {
	n := newTestNet(t)
	p, _ := n.openPrimary(newMem(t), t.TempDir(), func(c *Config) {
		c.Sync = SyncPolicy{Mode: Received, Replicas: 1, WhenShort: Block}
	})
	f := n.join("r1", true)
	f.hello(1, 0, storage.Checksum{})
	waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })
	ctx := t.Context()
	if _, err := commitOne(ctx, p, 1, 0, []byte("received")); err != nil {
		t.Fatal(err)
	}
	applied := WithSync(ctx, SyncPolicy{Mode: Applied, Replicas: 1, WhenShort: Block})
	if _, err := commitOne(applied, p, 2, 0, []byte("applied")); err != nil {
		t.Fatal(err)
	}
	f.check(p)
	want := []string{"txn 1 wants received", "txn 2"}
	if got := f.sentMethods(); !slices.Equal(got, want) {
		t.Fatalf("r1 received %q; want %q", got, want)
	}
}

// waitCounter is a store whose transactions count the local durability
// waits the Primary makes (storage.FinishAtDeferred's wait).
type waitCounter struct {
	storage.Storage
	waits atomic.Int64
}

func (s *waitCounter) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	txn, err := s.Storage.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	return &waitCountingTxn{Txn: txn, s: s}, nil
}

type waitCountingTxn struct {
	storage.Txn
	s *waitCounter
}

func (t *waitCountingTxn) FinishAtDeferred(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, func() error, error) {
	c, wait, err := storage.FinishAtDeferred(ctx, t.Txn, tid, expect)
	return c, func() error { t.s.waits.Add(1); return wait() }, err
}

// In applied mode a lone commit waits for its local sync and its replicas
// at once; a commit that finds others finishing waits for its replicas
// first, so that its local sync round starts later and covers the
// commits written meanwhile.
func TestAppliedCommitSyncsAfterReplicas(t *testing.T) {
	n := newTestNet(t)
	store := &waitCounter{Storage: newMem(t)}
	p, _ := n.openPrimary(store, t.TempDir(), func(c *Config) {
		c.Sync = SyncPolicy{Mode: Applied, Replicas: 1, Timeout: time.Hour, WhenShort: Block}
	})
	f := n.join("r1", false) // applies, never acknowledges by itself
	f.hello(1, 0, storage.Checksum{})
	waitFor(t, "r1 healthy", func() bool { r, _ := replicaState(p, "r1"); return r.State == "healthy" })

	type result struct {
		c   storage.Commit
		err error
	}
	commit := func(oid storage.OID) chan result {
		done := make(chan result, 1)
		go func() {
			c, err := commitOne(t.Context(), p, oid, 0, []byte("x"))
			done <- result{c, err}
		}()
		return done
	}
	a := commit(1)
	waitFor(t, "the lone commit's local wait", func() bool { return store.waits.Load() == 1 })
	b := commit(2)
	waitFor(t, "the second commit at the replica", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got) == 2
	})
	if p.finishing.Load() != 2 {
		t.Fatalf("%d commits finishing, want both", p.finishing.Load())
	}
	if w := store.waits.Load(); w != 1 {
		t.Fatalf("%d local waits before any acknowledgement, want only the lone commit's", w)
	}
	f.mu.Lock()
	last := f.got[1].tid
	f.mu.Unlock()
	if err := f.sender.Send(t.Context(), f.to, &wire.Applied{TID: uint64(last)}); err != nil {
		t.Fatal(err)
	}
	for _, done := range []chan result{a, b} {
		if r := <-done; r.err != nil {
			t.Fatal(r.err)
		}
	}
	if w := store.waits.Load(); w != 2 {
		t.Fatalf("%d local waits, want one per commit", w)
	}
}
