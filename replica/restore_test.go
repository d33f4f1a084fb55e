package replica

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/wire"
)

// newRestoringFixture is a core over a durable badgerstore, whose
// restorer takes the replays.
func newRestoringFixture(t *testing.T) *coreFixture {
	t.Helper()
	s, err := badgerstore.Open(context.Background(), badgerstore.Config{
		Dir: filepath.Join(t.TempDir(), "store"), Logger: zaptest.NewLogger(t),
		MemTableSize: 4 << 20, BlockCacheSize: 8 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	env := &fakeEnv{}
	f := &coreFixture{t: t, src: newSource(t, 1), env: env, c: newCore(s, env, zaptest.NewLogger(t), 0, 0, nil)}
	if f.c.restore == nil {
		t.Fatal("badgerstore is not a restorer")
	}
	return f
}

// TestReplaysRestoredInBatches: replays wait in the batch until the
// replica is idle or another message comes, then are applied together
// and acknowledged with the last TID.
func TestReplaysRestoredInBatches(t *testing.T) {
	f := newRestoringFixture(t)
	ctx := context.Background()
	x1, _ := f.src.commit("one", write{1, "a"}, write{2, "b"})
	x2, _ := f.src.commit("two", write{1, "a2"}, write{3, ""})
	x3, _ := f.src.commit("three", write{2, "b3"})
	for _, x := range []*storage.Transaction{x1, x2, x3} {
		f.feed(f.src.replay(x)...)
	}
	want := []string{"received " + x1.TID.String(), "received " + x2.TID.String(), "received " + x3.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	f.idle(ctx)
	if got := f.acks(); !reflect.DeepEqual(got, []string{"applied " + x3.TID.String()}) {
		t.Fatalf("acks after idle %q", got)
	}
	x4, _ := f.src.commit("four", write{1, "a4"}, write{9, "new"})
	f.feed(f.src.replay(x4)...)
	f.feed(&wire.Heartbeat{Epoch: 1, LastTID: uint64(x4.TID)}) // does not write the batch
	f.feed(&wire.Live{Epoch: 1, NextSeq: 1, TID: uint64(x4.TID)})
	if !f.c.live || f.c.quarantine != nil {
		t.Fatalf("live %v, quarantine %+v", f.c.live, f.c.quarantine)
	}
	want = []string{"received " + x4.TID.String(), "applied " + x4.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	if !reflect.DeepEqual(f.env.appliedTIDs, []storage.TID{x1.TID, x2.TID, x3.TID, x4.TID}) {
		t.Fatalf("applied %v", f.env.appliedTIDs)
	}
	// Live transactions take the usual path on top.
	x5, s5 := f.src.commit("five", write{1, "a5"})
	stores, vote, finish := f.src.live(1, x5, s5)
	f.feed(append(stores, vote, finish)...)
	f.c.drain()
	if f.c.quarantine != nil {
		t.Fatalf("quarantined: %+v", f.c.quarantine)
	}
	sameHistory(t, f.src.s, f.c.store)
}

// TestRestoredChainMismatchQuarantines: the batch keeps the transactions
// before the one whose chain differs, and the quarantine names that one.
func TestRestoredChainMismatchQuarantines(t *testing.T) {
	f := newRestoringFixture(t)
	ctx := context.Background()
	x1, _ := f.src.commit("one", write{1, "a"})
	x2, _ := f.src.commit("two", write{1, "a2"})
	f.feed(f.src.replay(x1)...)
	ms := f.src.replay(x2)
	ms[1].(*wire.Store).Data = []byte("not a2") // the replica's record differs
	f.feed(ms...)
	f.idle(ctx)
	q := f.wantQuarantined(wire.FailureChainMismatch, "restore at "+x2.TID.String())
	if q.Seq != 0 || q.TID != x2.TID {
		t.Fatalf("quarantine %+v", q)
	}
	if last, _ := f.c.store.LastTransaction(ctx); last != x1.TID {
		t.Fatalf("last transaction %s, want %s", last, x1.TID)
	}
	if !reflect.DeepEqual(f.env.appliedTIDs, []storage.TID{x1.TID}) {
		t.Fatalf("applied %v", f.env.appliedTIDs)
	}
}

// TestRestoredReplayDroppedBySessionReset: a replay in progress and the
// unwritten batch are dropped with the session; the next session replays
// them again from what the store has.
func TestRestoredReplayDroppedBySessionReset(t *testing.T) {
	f := newRestoringFixture(t)
	ctx := context.Background()
	x1, _ := f.src.commit("one", write{1, "a"})
	x2, _ := f.src.commit("two", write{2, "b"})
	f.feed(f.src.replay(x1)...)
	ms := f.src.replay(x2)
	f.feed(ms[:len(ms)-1]...) // no finish
	f.c.resetSession(ctx)
	if f.c.replay != nil || len(f.c.batch) != 0 {
		t.Fatal("replay or batch kept across sessions")
	}
	if last, _ := f.c.store.LastTransaction(ctx); last != 0 {
		t.Fatalf("last transaction %s, want none", last)
	}
	f.c.lastTID = 0 // as hello reads it from the store
	f.feed(f.src.replay(x1)...)
	f.feed(f.src.replay(x2)...)
	f.idle(ctx)
	if f.c.quarantine != nil {
		t.Fatalf("quarantined: %+v", f.c.quarantine)
	}
	sameHistory(t, f.src.s, f.c.store)
}

// TestCatchesUpIntoABadgerstore: a running replica over a badgerstore
// catches up through its restorer (small and large transactions), goes
// live and follows the primary.
func TestCatchesUpIntoABadgerstore(t *testing.T) {
	n := newNetwork(t)
	src := newSource(t, 1)
	for i := range 300 {
		src.commit(fmt.Sprint(i), write{storage.OID(i%17 + 1), fmt.Sprint("v", i)})
	}
	src.commit("big", write{1, string(make([]byte, 250_000))})
	store, err := badgerstore.Open(t.Context(), badgerstore.Config{
		Dir: filepath.Join(t.TempDir(), "store"), Logger: zaptest.NewLogger(t),
		MemTableSize: 4 << 20, BlockCacheSize: 8 << 20, ValueThreshold: 4 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := openReplica(t, n, "r1", t.TempDir(), store)
	p := newFakePrimary(t, n, src)
	waitState(t, r, StateLive)
	last := p.commit("live", write{2, "live"}, write{40, "new"})
	waitApplied(t, r, last)
	sameHistory(t, src.s, store)
	if st := r.Status(); st.Counters.Applied != 302 || st.Quarantine != nil {
		t.Fatalf("status %+v", st)
	}
}

// TestLiveTxnsRestoredInBatches: whole live transactions (txn messages)
// wait in the batch like replays, are acknowledged received at once if
// they ask for it, and applied together when the replica is idle; a
// streamed live transaction writes the batch first; a txn message whose
// chain differs quarantines the replica and keeps the transactions before
// it.
func TestLiveTxnsRestoredInBatches(t *testing.T) {
	f := newRestoringFixture(t)
	ctx := context.Background()
	f.goLive(1)
	x1, s1 := f.src.commit("one", write{1, "a"}, write{2, "b"})
	x2, s2 := f.src.commit("two", write{1, "a2"}, write{3, ""})
	quiet := f.src.txnMessage(2, x2, s2)
	quiet.Flags = 0 // applied will do
	f.feed(f.src.txnMessage(1, x1, s1), quiet)
	want := []string{"received " + x1.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	f.idle(ctx)
	if got := f.acks(); !reflect.DeepEqual(got, []string{"applied " + x2.TID.String()}) {
		t.Fatalf("acks after idle %q", got)
	}

	x3, s3 := f.src.commit("three", write{2, "b3"})
	x4, s4 := f.src.commit("four", write{4, "d"})
	f.feed(f.src.txnMessage(3, x3, s3))
	stores, vote, finish := f.src.live(4, x4, s4)
	f.feed(stores[0]) // a streamed begin writes the batch first
	f.c.finishing.Wait()
	if got := f.acks(); !reflect.DeepEqual(got, []string{"received " + x3.TID.String(), "applied " + x3.TID.String()}) {
		t.Fatalf("acks %q", got)
	}
	f.feed(append(stores[1:], vote, finish)...)
	f.c.drain()
	sameHistory(t, f.src.s, f.c.store)

	x5, s5 := f.src.commit("five", write{1, "a5"})
	x6, s6 := f.src.commit("six", write{5, "e"})
	bad := f.src.txnMessage(6, x6, s6)
	bad.Chain[0] ^= 1
	f.feed(f.src.txnMessage(5, x5, s5), bad)
	f.idle(ctx)
	q := f.wantQuarantined(wire.FailureChainMismatch, "restore at "+x6.TID.String())
	if q.TID != x6.TID {
		t.Fatalf("quarantine %+v", q)
	}
	if last, _ := f.c.store.LastTransaction(ctx); last != x5.TID {
		t.Fatalf("last transaction %s, want %s", last, x5.TID)
	}
}
