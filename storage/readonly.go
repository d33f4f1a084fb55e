package storage

import (
	"context"
	"fmt"
	"sync/atomic"
)

// ReadOnly returns a view of s that serves every read of s and refuses
// every write: Begin, NewOID and Pack return ErrReadOnly, wrapped with the
// operation. A replica serves its clients such a view while its own apply
// loop writes to s.
//
// The view does not own s: its Close only closes the view (later calls
// through it return ErrClosed) and leaves s open for its owner, who closes
// s separately. Closing s makes reads through the view fail with s's
// ErrClosed.
func ReadOnly(s Storage) Storage { return &readOnly{s: s} }

type readOnly struct {
	s      Storage
	closed atomic.Bool
}

func (r *readOnly) check(op string) error {
	if r.closed.Load() {
		return fmt.Errorf("storage: read-only view: %s: %w", op, ErrClosed)
	}
	return nil
}

func (r *readOnly) refuse(op string) error {
	if err := r.check(op); err != nil {
		return err
	}
	return fmt.Errorf("storage: read-only view: %s: %w", op, ErrReadOnly)
}

func (r *readOnly) Load(ctx context.Context, oid OID) ([]byte, TID, error) {
	if err := r.check("load"); err != nil {
		return nil, 0, err
	}
	return r.s.Load(ctx, oid)
}

func (r *readOnly) LoadBefore(ctx context.Context, oid OID, before TID) ([]byte, TID, TID, error) {
	if err := r.check("load before"); err != nil {
		return nil, 0, 0, err
	}
	return r.s.LoadBefore(ctx, oid, before)
}

func (r *readOnly) History(ctx context.Context, oid OID, n int) ([]Revision, error) {
	if err := r.check("history"); err != nil {
		return nil, err
	}
	return r.s.History(ctx, oid, n)
}

func (r *readOnly) LastTransaction(ctx context.Context) (TID, error) {
	if err := r.check("last transaction"); err != nil {
		return 0, err
	}
	return r.s.LastTransaction(ctx)
}

func (r *readOnly) Chain(ctx context.Context, tid TID) (Checksum, error) {
	if err := r.check("chain"); err != nil {
		return Checksum{}, err
	}
	return r.s.Chain(ctx, tid)
}

func (r *readOnly) Iterator(ctx context.Context, from, to TID) (TransactionIterator, error) {
	if err := r.check("iterator"); err != nil {
		return nil, err
	}
	return r.s.Iterator(ctx, from, to)
}

func (r *readOnly) NewOID(context.Context) (OID, error) { return 0, r.refuse("new OID") }

func (r *readOnly) Pack(context.Context, TID) error { return r.refuse("pack") }

func (r *readOnly) Begin(context.Context, TxnMeta) (Txn, error) { return nil, r.refuse("begin") }

// Close closes the view, not the storage behind it.
func (r *readOnly) Close() error {
	r.closed.Store(true)
	return nil
}
