package benchtable

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/repld/repld/storage"
)

// mirror is the table's control for replication: a storage.Storage that
// commits every transaction to two stores side by side (on one disk, in
// the table) and returns once both made it durable. It is what a
// replicated commit in applied mode costs the machine's disk and cores
// with no replication protocol at all: no messages, no hand-offs between
// nodes, both copies written at once rather than the second after the
// first. It is not a replica: the second store assigns TIDs of its own,
// so mirror keeps each object's serial there. Reads, OIDs and history
// come from the first store.
type mirror struct {
	a, b storage.Storage
	mu   sync.Mutex
	// serials holds each object's serial in b, for its next store.
	serials map[storage.OID]storage.TID
}

func newMirror(a, b storage.Storage) *mirror {
	return &mirror{a: a, b: b, serials: make(map[storage.OID]storage.TID)}
}

func (m *mirror) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	return m.a.Load(ctx, oid)
}

func (m *mirror) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	return m.a.LoadBefore(ctx, oid, before)
}

func (m *mirror) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	return m.a.History(ctx, oid, n)
}

func (m *mirror) LastTransaction(ctx context.Context) (storage.TID, error) {
	return m.a.LastTransaction(ctx)
}

func (m *mirror) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	return m.a.Chain(ctx, tid)
}

func (m *mirror) NewOID(ctx context.Context) (storage.OID, error) { return m.a.NewOID(ctx) }

func (m *mirror) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	return m.a.Iterator(ctx, from, to)
}

// Pack packs both stores before the same TID of the first; the second
// store's TIDs differ, so it keeps a little more or less history.
func (m *mirror) Pack(ctx context.Context, before storage.TID) error {
	return errors.Join(m.a.Pack(ctx, before), m.b.Pack(ctx, before))
}

// Close leaves the stores open: the caller owns them.
func (m *mirror) Close() error { return nil }

func (m *mirror) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	ta, err := m.a.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	tb, err := m.b.Begin(ctx, meta)
	if err != nil {
		return nil, errors.Join(err, ta.Abort(ctx))
	}
	return &mirrorTxn{m: m, a: ta, b: tb}, nil
}

// mirrorTxn is a transaction on both stores of a mirror.
type mirrorTxn struct {
	m    *mirror
	a, b storage.Txn
	oids []storage.OID
}

func (t *mirrorTxn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := t.a.Store(ctx, oid, serial, data); err != nil {
		return err
	}
	t.m.mu.Lock()
	bSerial := t.m.serials[oid]
	t.m.mu.Unlock()
	if err := t.b.Store(ctx, oid, bSerial, data); err != nil {
		return fmt.Errorf("mirror: second store: %w", err)
	}
	t.oids = append(t.oids, oid)
	return nil
}

// Vote votes on the first store, then the second: every transaction
// takes the two commit locks in the same order.
func (t *mirrorTxn) Vote(ctx context.Context) error {
	if err := t.a.Vote(ctx); err != nil {
		return errors.Join(err, t.b.Abort(ctx))
	}
	if err := t.b.Vote(ctx); err != nil {
		return errors.Join(fmt.Errorf("mirror: second store: %w", err), t.a.Abort(ctx))
	}
	return nil
}

func (t *mirrorTxn) Finish(ctx context.Context) (storage.Commit, error) {
	return t.finish(ctx, func() (storage.Commit, error) { return t.a.Finish(ctx) })
}

func (t *mirrorTxn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	return t.finish(ctx, func() (storage.Commit, error) { return t.a.FinishAt(ctx, tid, expect) })
}

// finish finishes both transactions at once, the first with finishA, and
// returns the first's commit once both are durable.
func (t *mirrorTxn) finish(ctx context.Context, finishA func() (storage.Commit, error)) (storage.Commit, error) {
	var (
		cb   storage.Commit
		errB error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		cb, errB = t.b.Finish(ctx)
	}()
	ca, errA := finishA()
	<-done
	if errB != nil {
		return ca, errors.Join(errA, fmt.Errorf("mirror: second store: %w", errB))
	}
	t.m.mu.Lock()
	for _, oid := range t.oids {
		t.m.serials[oid] = cb.TID
	}
	t.m.mu.Unlock()
	return ca, errA
}

func (t *mirrorTxn) Abort(ctx context.Context) error {
	return errors.Join(t.a.Abort(ctx), t.b.Abort(ctx))
}
