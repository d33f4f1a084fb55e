package replica

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/wire"
)

// coreFixture is a core over a fault-injecting memstore, with a source
// primary to produce messages.
type coreFixture struct {
	t     *testing.T
	src   *source
	store *faultstore.Store
	env   *fakeEnv
	c     *core
}

func newCoreFixture(t *testing.T) *coreFixture {
	t.Helper()
	inner, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fs := faultstore.New(inner)
	t.Cleanup(func() { fs.Close() })
	env := &fakeEnv{}
	return &coreFixture{t: t, src: newSource(t, 1), store: fs, env: env,
		c: newCore(fs, env, zaptest.NewLogger(t), 0, 0, nil)}
}

// feed steps every message, failing on a stop.
func (f *coreFixture) feed(ms ...wire.Message) {
	f.t.Helper()
	for _, m := range ms {
		if err := f.c.step(context.Background(), m); err != nil {
			f.t.Fatalf("step %s: %v", m.Method(), err)
		}
	}
}

// acks returns the methods and first numeric argument of what was sent,
// and clears it.
func (f *coreFixture) acks() []string {
	var out []string
	for _, m := range f.env.sent {
		switch m := m.(type) {
		case *wire.Voted:
			out = append(out, "voted "+itoa(m.Seq))
		case *wire.Received:
			out = append(out, "received "+storage.TID(m.TID).String())
		case *wire.Applied:
			out = append(out, "applied "+storage.TID(m.TID).String())
		case *wire.Failure:
			out = append(out, "failure "+m.Code.String())
		default:
			out = append(out, m.Method())
		}
	}
	f.env.sent = nil
	return out
}

func itoa(n uint64) string { return storage.TID(n).String() }

// wantQuarantined checks the core quarantined itself with code, a reason
// containing text, and reported it.
func (f *coreFixture) wantQuarantined(code wire.FailureCode, text string) Quarantine {
	f.t.Helper()
	q := f.c.quarantine
	if q == nil {
		f.t.Fatalf("not quarantined; want %s", code)
	}
	if q.Code != code.String() || !strings.Contains(q.Reason, text) {
		f.t.Fatalf("quarantine %+v, want code %s and a reason containing %q", q, code, text)
	}
	if len(f.env.quarantines) != 1 || f.env.quarantines[0] != *q {
		f.t.Fatalf("persisted %+v, want %+v", f.env.quarantines, *q)
	}
	if len(f.c.inflight) != 0 || f.c.replay != nil {
		f.t.Fatal("transactions still in progress after quarantine")
	}
	last := f.env.sent[len(f.env.sent)-1].(*wire.Failure)
	if last.Code != code || last.Text != q.Reason || last.Seq != q.Seq || storage.TID(last.TID) != q.TID {
		f.t.Fatalf("failure sent %+v for quarantine %+v", last, q)
	}
	return *q
}

// goLive replays the source's history and goes live at nextSeq.
func (f *coreFixture) goLive(nextSeq uint64) {
	f.t.Helper()
	for _, x := range transactions(f.t, f.src.s) {
		if x.TID > f.c.lastTID {
			f.feed(f.src.replay(x)...)
		}
	}
	f.feed(&wire.Live{Epoch: f.src.epoch, NextSeq: nextSeq, TID: uint64(f.c.lastTID)})
	if !f.c.live {
		f.t.Fatal("not live")
	}
	f.env.sent = nil
}

func TestReplayThenLive(t *testing.T) {
	f := newCoreFixture(t)
	x1, _ := f.src.commit("one", write{1, "a"}, write{2, "b"})
	x2, _ := f.src.commit("two", write{1, "a2"}, write{3, ""})
	f.feed(f.src.replay(x1)...)
	f.feed(f.src.replay(x2)...)
	want := []string{"received " + x1.TID.String(), "applied " + x1.TID.String(), "received " + x2.TID.String(), "applied " + x2.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	// A live transaction before live is ignored: it will be replayed.
	x3, s3 := f.src.commit("three", write{2, "b3"})
	stores, vote, finish := f.src.live(4, x3, s3)
	f.feed(append(stores, vote, finish)...)
	if f.c.lastTID != x2.TID || len(f.acks()) != 0 {
		t.Fatalf("applied a live transaction before live: last %s", f.c.lastTID)
	}
	f.feed(f.src.replay(x3)...)
	f.feed(&wire.Live{Epoch: 1, NextSeq: 5, TID: uint64(x3.TID)})
	if !f.c.live {
		t.Fatal("not live")
	}
	f.acks()
	x4, s4 := f.src.commit("four", write{1, "a4"}, write{9, "new"})
	stores, vote, finish = f.src.live(5, x4, s4)
	f.feed(append(stores, vote, finish)...)
	want = []string{"received " + x4.TID.String(), "applied " + x4.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	sameHistory(t, f.src.s, f.store)
	if !reflect.DeepEqual(f.env.appliedTIDs, []storage.TID{x1.TID, x2.TID, x3.TID, x4.TID}) {
		t.Fatalf("applied %v", f.env.appliedTIDs)
	}
	if f.c.quarantine != nil {
		t.Fatalf("quarantined: %+v", f.c.quarantine)
	}
}

// TestInFlightKeptApart interleaves two live transactions, a third that
// aborts, and a replayed one between them.
func TestInFlightKeptApart(t *testing.T) {
	f := newCoreFixture(t)
	f.src.commit("base", write{1, "a"}, write{2, "b"})
	f.goLive(10)
	x1, s1 := f.src.commit("t10", write{1, "a10"})
	x2, s2 := f.src.commit("t11", write{2, "b11"}, write{3, "c11"})
	st1, v1, f1 := f.src.live(10, x1, s1)
	st2, v2, f2 := f.src.live(11, x2, s2)
	ab := []wire.Message{&wire.Begin{Epoch: 1, Seq: 12}, &wire.Store{Epoch: 1, Seq: 12, OID: 1, Data: []byte("never")}}
	f.feed(st2[0], st1[0], ab[0], st2[1], ab[1], st1[1], st2[2], v2, v1, &wire.Abort{Epoch: 1, Seq: 12}, f1, f2)
	if len(f.c.inflight) != 0 {
		t.Fatalf("in flight: %v", f.c.inflight)
	}
	sameHistory(t, f.src.s, f.store)
	// A transaction that was in flight when the replica went live
	// (seq 9 < 10) is ignored and arrives as a replay.
	x3, s3 := f.src.commit("t9", write{4, "d"})
	_, v3, f3 := f.src.live(9, x3, s3)
	f.feed(&wire.Store{Epoch: 1, Seq: 9, OID: 4, Data: []byte("d")}, v3, f3)
	f.feed(f.src.replay(x3)...)
	sameHistory(t, f.src.s, f.store)
	if f.c.quarantine != nil {
		t.Fatalf("quarantined: %+v", f.c.quarantine)
	}
}

func TestOutOfSequenceQuarantines(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []wire.Message
		code wire.FailureCode
		text string
	}{
		{"store without begin", []wire.Message{&wire.Store{Epoch: 1, Seq: 12, OID: 1}}, wire.FailureOutOfOrder, "without its begin"},
		{"finish without begin", []wire.Message{&wire.Finish{Epoch: 1, Seq: 10, TID: 1}}, wire.FailureOutOfOrder, "without its begin"},
		{"second begin", []wire.Message{&wire.Begin{Epoch: 1, Seq: 10}, &wire.Begin{Epoch: 1, Seq: 10}}, wire.FailureOutOfOrder, "second begin"},
		{"finish before vote", []wire.Message{&wire.Begin{Epoch: 1, Seq: 10}, &wire.Finish{Epoch: 1, Seq: 10, TID: 1}}, wire.FailureOutOfOrder, "before its vote"},
		{"store after vote", []wire.Message{&wire.Begin{Epoch: 1, Seq: 10}, &wire.Vote{Epoch: 1, Seq: 10}, &wire.Store{Epoch: 1, Seq: 10}}, wire.FailureOutOfOrder, "after the vote"},
		{"replayed store without begin", []wire.Message{&wire.Store{Epoch: 1, OID: 1}}, wire.FailureOutOfOrder, "replayed store"},
		{"two replays at once", []wire.Message{&wire.Begin{Epoch: 1}, &wire.Begin{Epoch: 1}}, wire.FailureOutOfOrder, "another replayed"},
		{"vote in a replay", []wire.Message{&wire.Begin{Epoch: 1}, &wire.Vote{Epoch: 1}}, wire.FailureOutOfOrder, "vote in a replayed"},
		{"second live", []wire.Message{&wire.Live{Epoch: 1, NextSeq: 3, TID: 0}}, wire.FailureProtocol, "second live"},
		{"not from a primary", []wire.Message{&wire.Hello{Node: "x"}}, wire.FailureProtocol, `unexpected "hello"`},
		{"TID not above the last", []wire.Message{&wire.Begin{Epoch: 1}, &wire.Finish{Epoch: 1, TID: 1}}, wire.FailureOutOfOrder, "finish at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCoreFixture(t)
			f.src.commit("base", write{1, "a"})
			f.goLive(10)
			f.feed(tc.msgs...)
			f.wantQuarantined(tc.code, tc.text)
			// Nothing more is applied.
			before := f.store.Calls(faultstore.OpBegin)
			f.feed(&wire.Begin{Epoch: 1, Seq: 20}, &wire.Begin{Epoch: 1})
			if f.store.Calls(faultstore.OpBegin) != before {
				t.Fatal("a quarantined core began a transaction")
			}
		})
	}
}

func TestLiveMustFollowTheReplay(t *testing.T) {
	f := newCoreFixture(t)
	x, _ := f.src.commit("one", write{1, "a"})
	f.feed(&wire.Live{Epoch: 1, NextSeq: 1, TID: uint64(x.TID)})
	f.wantQuarantined(wire.FailureOutOfOrder, "live after "+x.TID.String())
}

func TestChainMismatchQuarantines(t *testing.T) {
	f := newCoreFixture(t)
	f.goLive(1)
	x, s := f.src.commit("one", write{1, "a"})
	stores, vote, finish := f.src.live(1, x, s)
	stores[1].(*wire.Store).Data = []byte("not a") // the replica's record differs
	f.feed(&wire.Begin{Epoch: 1, Seq: 2})          // another transaction in flight
	f.feed(append(stores, vote, finish)...)
	q := f.wantQuarantined(wire.FailureChainMismatch, "finish at "+x.TID.String())
	if q.Seq != 1 || q.TID != x.TID || q.Time.IsZero() {
		t.Fatalf("quarantine %+v", q)
	}
	if last, _ := f.store.LastTransaction(context.Background()); last != 0 {
		t.Fatalf("committed %s despite the mismatch", last)
	}
}

func TestStorageFailureQuarantines(t *testing.T) {
	for _, op := range []faultstore.Op{faultstore.OpVote, faultstore.OpFinishAt, faultstore.OpStore, faultstore.OpBegin} {
		t.Run(op.String(), func(t *testing.T) {
			f := newCoreFixture(t)
			f.goLive(1)
			x, s := f.src.commit("one", write{1, "a"})
			stores, vote, finish := f.src.live(1, x, s)
			f.store.FailNext(op, errors.New("no space left on device"), 1)
			f.feed(append(stores, vote, finish)...)
			f.wantQuarantined(wire.FailureStorage, "no space left")
		})
	}
}

func TestEpochs(t *testing.T) {
	f := newCoreFixture(t)
	f.feed(&wire.Heartbeat{Epoch: 3, LastTID: 7})
	if f.c.epoch != 3 || !reflect.DeepEqual(f.env.epochs, []uint64{3}) || f.c.primaryTID != 7 {
		t.Fatalf("epoch %d, saved %v, primary tid %d", f.c.epoch, f.env.epochs, f.c.primaryTID)
	}
	// An older primary's messages are refused and change nothing.
	x, _ := f.src.commit("one", write{1, "a"})
	f.src.epoch = 2
	f.feed(f.src.replay(x)...)
	f.feed(&wire.Heartbeat{Epoch: 2, LastTID: 9})
	if f.c.refusedEpoch != 4 || f.c.lastTID != 0 || f.c.primaryTID != 7 || f.c.quarantine != nil {
		t.Fatalf("refused %d, last %s, primary %d, quarantine %v", f.c.refusedEpoch, f.c.lastTID, f.c.primaryTID, f.c.quarantine)
	}
	// The current one's are applied.
	f.src.epoch = 3
	f.feed(f.src.replay(x)...)
	if f.c.lastTID != x.TID {
		t.Fatalf("last %s, want %s", f.c.lastTID, x.TID)
	}
	// A higher epoch that cannot be persisted is a storage failure.
	f.env.failSave = errors.New("disk full")
	f.feed(&wire.Heartbeat{Epoch: 4})
	f.wantQuarantined(wire.FailureStorage, "disk full")
	if f.c.epoch != 3 {
		t.Fatalf("epoch %d after a failed save", f.c.epoch)
	}
}

func TestPackAndResetSession(t *testing.T) {
	f := newCoreFixture(t)
	f.src.commit("one", write{1, "a"})
	x2, _ := f.src.commit("two", write{1, "b"})
	f.feed(&wire.Pack{Epoch: 1, Before: uint64(x2.TID)}) // before live: ignored
	if f.store.Calls(faultstore.OpPack) != 0 {
		t.Fatal("packed before live")
	}
	f.goLive(1)
	f.feed(&wire.Pack{Epoch: 1, Before: uint64(x2.TID)})
	if _, err := f.store.History(context.Background(), 1, 0); err != nil || f.store.Calls(faultstore.OpPack) != 1 {
		t.Fatalf("pack: %v, %d calls", err, f.store.Calls(faultstore.OpPack))
	}
	f.feed(&wire.Begin{Epoch: 1, Seq: 1}, &wire.Begin{Epoch: 1})
	f.c.resetSession(context.Background())
	if f.c.live || len(f.c.inflight) != 0 || f.c.replay != nil {
		t.Fatal("session state survived the reset")
	}
	// Closing the context mid-apply stops without quarantine.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x3, _ := f.src.commit("three", write{2, "c"})
	for _, m := range f.src.replay(x3) {
		if err := f.c.step(ctx, m); err != nil {
			if !errors.Is(err, errStopped) {
				t.Fatal(err)
			}
			break
		}
	}
	if f.c.quarantine != nil {
		t.Fatalf("quarantined on shutdown: %+v", f.c.quarantine)
	}
}

// TestReplayMessages: a transaction replayed as one replay message is
// applied as its begin, stores and finish would be, and a replay message
// whose records are cut short quarantines the replica with nothing of it
// applied.
func TestReplayMessages(t *testing.T) {
	f := newCoreFixture(t)
	x1, _ := f.src.commit("one", write{1, "a"}, write{2, "b"})
	x2, _ := f.src.commit("two", write{1, "a2"}, write{3, ""})
	f.feed(f.src.replayMessage(x1))
	f.feed(f.src.replay(x2)...) // the two forms mix
	want := []string{"received " + x1.TID.String(), "applied " + x1.TID.String(), "received " + x2.TID.String(), "applied " + x2.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	for _, x := range []*storage.Transaction{x1, x2} {
		if c, err := f.store.Chain(t.Context(), x.TID); err != nil || c != x.Chain {
			t.Fatalf("chain at %s = %s, %v; want %s", x.TID, c, err, x.Chain)
		}
	}

	x3, _ := f.src.commit("three", write{4, "d"})
	bad := f.src.replayMessage(x3)
	bad.Records = bad.Records[:len(bad.Records)-1]
	f.feed(bad)
	f.wantQuarantined(wire.FailureProtocol, "has 1 bytes of data, 0 left")
	if last, err := f.store.LastTransaction(t.Context()); err != nil || last != x2.TID {
		t.Fatalf("last transaction %s, %v; want %s: nothing of the bad replay applied", last, err, x2.TID)
	}
}

// TestTxnMessages: a live transaction sent whole as one txn message is
// applied as its begin, stores, vote and finish would be; one below
// next_seq is ignored (it will be replayed); one whose records are cut
// short, or whose seq already began, quarantines the replica with nothing
// of it applied.
func TestTxnMessages(t *testing.T) {
	f := newCoreFixture(t)
	x0, _ := f.src.commit("zero", write{1, "a"})
	f.feed(f.src.replay(x0)...)
	f.feed(&wire.Live{Epoch: f.src.epoch, NextSeq: 3, TID: uint64(x0.TID)})
	f.acks()

	x1, s1 := f.src.commit("one", write{1, "a1"}, write{2, "b"})
	f.feed(f.src.txnMessage(2, x1, s1)) // below next_seq: ignored
	if got := f.acks(); len(got) != 0 || f.c.lastTID != x0.TID {
		t.Fatalf("a txn below next_seq was applied: acks %q, last %s", got, f.c.lastTID)
	}
	f.feed(f.src.replay(x1)...)
	f.acks()
	x2, s2 := f.src.commit("two", write{1, "a2"}, write{3, ""})
	f.feed(f.src.txnMessage(3, x2, s2))
	want := []string{"received " + x2.TID.String(), "applied " + x2.TID.String()}
	if got := f.acks(); !reflect.DeepEqual(got, want) {
		t.Fatalf("acks %q, want %q", got, want)
	}
	x2b, s2b := f.src.commit("two b", write{3, "c"})
	quiet := f.src.txnMessage(4, x2b, s2b)
	quiet.Flags = 0 // applied will do
	f.feed(quiet)
	if got, want := f.acks(), []string{"applied " + x2b.TID.String()}; !reflect.DeepEqual(got, want) {
		t.Fatalf("acks of a txn not asking for received %q, want %q", got, want)
	}
	sameHistory(t, f.src.s, f.store)

	x3, s3 := f.src.commit("three", write{4, "d"})
	bad := f.src.txnMessage(5, x3, s3)
	bad.Records = bad.Records[:len(bad.Records)-1]
	f.feed(bad)
	f.wantQuarantined(wire.FailureProtocol, "has 1 bytes of data, 0 left")
	if last, err := f.store.LastTransaction(t.Context()); err != nil || last != x2b.TID {
		t.Fatalf("last transaction %s, %v; want %s: nothing of the bad txn applied", last, err, x2b.TID)
	}

	g := newCoreFixture(t)
	g.goLive(1)
	y1, t1 := g.src.commit("one", write{1, "a"})
	stores, _, _ := g.src.live(1, y1, t1)
	g.feed(stores[0])
	g.feed(g.src.txnMessage(1, y1, t1))
	g.wantQuarantined(wire.FailureOutOfOrder, "second begin of transaction seq 1")
}
