package replica

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/wire"
)

// write is one object revision of a test transaction.
type write struct {
	oid  storage.OID
	data string
}

// source is a primary's store for tests: it commits transactions and
// turns them into the messages a primary sends.
type source struct {
	t     testing.TB
	s     *memstore.Store
	epoch uint64
}

func newSource(t testing.TB, epoch uint64) *source {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &source{t: t, s: s, epoch: epoch}
}

// commit commits writes and returns the committed transaction and the
// serial each write was based on, in write order.
func (p *source) commit(desc string, ws ...write) (*storage.Transaction, []storage.TID) {
	p.t.Helper()
	ctx := context.Background()
	txn, err := p.s.Begin(ctx, storage.TxnMeta{User: []byte("u"), Description: []byte(desc)})
	if err != nil {
		p.t.Fatal(err)
	}
	var serials []storage.TID
	for _, w := range ws {
		_, serial, err := p.s.Load(ctx, w.oid)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			p.t.Fatal(err)
		}
		serials = append(serials, serial)
		if err := txn.Store(ctx, w.oid, serial, []byte(w.data)); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		p.t.Fatal(err)
	}
	c, err := txn.Finish(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.txn(c.TID), serials
}

// txn returns committed transaction tid.
func (p *source) txn(tid storage.TID) *storage.Transaction {
	p.t.Helper()
	all := transactions(p.t, p.s)
	for _, x := range all {
		if x.TID == tid {
			return x
		}
	}
	p.t.Fatalf("no transaction %s", tid)
	return nil
}

// replay returns the seq-0 messages replaying x.
func (p *source) replay(x *storage.Transaction) []wire.Message {
	ms := []wire.Message{&wire.Begin{Epoch: p.epoch, User: x.Meta.User, Description: x.Meta.Description, Extension: x.Meta.Extension}}
	for _, r := range x.Records {
		ms = append(ms, &wire.Store{Epoch: p.epoch, OID: uint64(r.OID), Data: r.Data})
	}
	return append(ms, &wire.Finish{Epoch: p.epoch, TID: uint64(x.TID), Chain: wire.Chain(x.Chain)})
}

// replayMessage returns x as one replay message.
func (p *source) replayMessage(x *storage.Transaction) *wire.Replay {
	var records []byte
	for _, r := range x.Records {
		records = wire.AppendReplayRecord(records, uint64(r.OID), r.Data)
	}
	return &wire.Replay{Epoch: p.epoch, TID: uint64(x.TID), Chain: wire.Chain(x.Chain),
		User: x.Meta.User, Description: x.Meta.Description, Extension: x.Meta.Extension, Records: records}
}

// txnMessage returns x as one live txn message of transaction seq, which
// asks for a received acknowledgement.
func (p *source) txnMessage(seq uint64, x *storage.Transaction, serials []storage.TID) *wire.Txn {
	var records []byte
	for i, r := range x.Records {
		records = wire.AppendTxnRecord(records, uint64(r.OID), uint64(serials[i]), r.Data)
	}
	return &wire.Txn{Epoch: p.epoch, Seq: seq, TID: uint64(x.TID), Chain: wire.Chain(x.Chain), Flags: wire.TxnWantReceived,
		User: x.Meta.User, Description: x.Meta.Description, Extension: x.Meta.Extension, Records: records}
}

// live returns the live messages of x as transaction seq, in three parts:
// begin and stores, vote, finish.
func (p *source) live(seq uint64, x *storage.Transaction, serials []storage.TID) (stores []wire.Message, vote, finish wire.Message) {
	stores = []wire.Message{&wire.Begin{Epoch: p.epoch, Seq: seq, User: x.Meta.User, Description: x.Meta.Description, Extension: x.Meta.Extension}}
	for i, r := range x.Records {
		stores = append(stores, &wire.Store{Epoch: p.epoch, Seq: seq, OID: uint64(r.OID), Serial: uint64(serials[i]), Data: r.Data})
	}
	return stores, &wire.Vote{Epoch: p.epoch, Seq: seq}, &wire.Finish{Epoch: p.epoch, Seq: seq, TID: uint64(x.TID), Chain: wire.Chain(x.Chain)}
}

// transactions returns every committed transaction of s.
func transactions(t testing.TB, s storage.Storage) []*storage.Transaction {
	t.Helper()
	ctx := context.Background()
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []*storage.Transaction
	for {
		x, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
}

// sameHistory fails unless a and b hold the same transactions: metadata,
// records and chain, transaction by transaction.
func sameHistory(t testing.TB, a, b storage.Storage) {
	t.Helper()
	ta, tb := transactions(t, a), transactions(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("%d transactions, want %d", len(tb), len(ta))
	}
	for i := range ta {
		x, y := ta[i], tb[i]
		norm := func(m storage.TxnMeta) [3]string {
			return [3]string{string(m.User), string(m.Description), string(m.Extension)}
		}
		if x.TID != y.TID || x.Chain != y.Chain || norm(x.Meta) != norm(y.Meta) || len(x.Records) != len(y.Records) {
			t.Fatalf("transaction %d: %s %s %q, want %s %s %q", i, y.TID, y.Chain, y.Meta.Description, x.TID, x.Chain, x.Meta.Description)
		}
		for j := range x.Records {
			if x.Records[j].OID != y.Records[j].OID || string(x.Records[j].Data) != string(y.Records[j].Data) {
				t.Fatalf("transaction %s record %d differs", x.TID, j)
			}
		}
	}
}

// fakeEnv records what the core does outside itself.
type fakeEnv struct {
	// mu orders send and applied: finishing goroutines call them while
	// the test steps the core. Tests read the fields after drain.
	mu          sync.Mutex
	sent        []wire.Message
	epochs      []uint64
	quarantines []Quarantine
	appliedTIDs []storage.TID
	failSave    error
}

func (e *fakeEnv) send(m wire.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sent = append(e.sent, m)
}

func (e *fakeEnv) applied(tid storage.TID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.appliedTIDs = append(e.appliedTIDs, tid)
}
func (e *fakeEnv) now() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
func (e *fakeEnv) saveQuarantine(q Quarantine) error {
	e.quarantines = append(e.quarantines, q)
	return nil
}
func (e *fakeEnv) saveEpoch(epoch uint64) error {
	if e.failSave != nil {
		return e.failSave
	}
	e.epochs = append(e.epochs, epoch)
	return nil
}

// faultStore is a memstore whose FinishAt can be made to fail.
type faultStore struct {
	*faultstore.Store
}

func newFaultStore(t testing.TB) faultStore {
	t.Helper()
	inner, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := faultstore.New(inner)
	t.Cleanup(func() { s.Close() })
	return faultStore{s}
}

func (s faultStore) failFinish(err error) { s.FailAlways(faultstore.OpFinishAt, err) }
func (s faultStore) clear()               { s.Clear() }

func (e *fakeEnv) wake() {}

// idle tells the core that no message is waiting and waits for the
// goroutines that makes it start (a deferred restorer's sync and its
// acknowledgement).
func (f *coreFixture) idle(ctx context.Context) {
	f.c.idle(ctx)
	f.c.finishing.Wait()
}
