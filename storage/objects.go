package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
)

// ObjectState is one object as of a snapshot: its newest revision with a
// TID at or before the snapshot.
type ObjectState struct {
	OID    OID
	Serial TID
	// Data is valid only until the iteration step that yields it returns,
	// and must not be modified: listing a large store does not copy every
	// object.
	Data []byte
}

// ObjectLister is an optional capability of a Storage: walking the
// current state of a range of objects in OID order, in one pass, so that
// two nodes can compare their states by digest without loading objects
// one by one. Use ListObjects, which reports stores without it.
type ObjectLister interface {
	// Objects yields, in ascending OID order, every object with from <=
	// OID <= to that exists as of snapshot at: exactly the objects for
	// which LoadBefore(oid, at+1) succeeds, with that revision's serial and
	// data (objects whose revision at the snapshot was packed away are
	// left out). at above the last transaction means the last transaction.
	// An error ends the iteration; it is yielded once, with a zero
	// ObjectState.
	Objects(ctx context.Context, from, to OID, at TID) iter.Seq2[ObjectState, error]
}

// ListObjects is s.Objects if s is an ObjectLister, and otherwise a
// sequence yielding one error wrapping errors.ErrUnsupported.
func ListObjects(ctx context.Context, s Storage, from, to OID, at TID) iter.Seq2[ObjectState, error] {
	if l, ok := s.(ObjectLister); ok {
		return l.Objects(ctx, from, to, at)
	}
	return func(yield func(ObjectState, error) bool) {
		yield(ObjectState{}, fmt.Errorf("storage: list objects: %T cannot list objects: %w", s, errors.ErrUnsupported))
	}
}

// TxnSeeker is an optional capability of a Storage: finding the committed
// transaction next to a TID without walking the history, which is what
// lets two nodes bisect their histories in O(log n) requests. Use
// TxnAtOrBefore and TxnAfter, which fall back to the Iterator.
type TxnSeeker interface {
	// TxnAtOrBefore returns the newest committed transaction with TID <=
	// tid and its chain checksum; 0 and the zero checksum if there is none.
	TxnAtOrBefore(ctx context.Context, tid TID) (TID, Checksum, error)
	// TxnAfter returns the oldest committed transaction with TID > tid and
	// its chain checksum; ErrNotFound if there is none.
	TxnAfter(ctx context.Context, tid TID) (TID, Checksum, error)
}

// TxnAtOrBefore is TxnSeeker.TxnAtOrBefore on any Storage; stores without
// the capability answer by walking their history up to tid.
func TxnAtOrBefore(ctx context.Context, s Storage, tid TID) (TID, Checksum, error) {
	if k, ok := s.(TxnSeeker); ok {
		return k.TxnAtOrBefore(ctx, tid)
	}
	if tid == 0 {
		return 0, Checksum{}, nil
	}
	if c, err := s.Chain(ctx, tid); err == nil {
		return tid, c, nil
	}
	var last Transaction
	for t, err := range Transactions(ctx, s, 1, tid) {
		if err != nil {
			return 0, Checksum{}, fmt.Errorf("storage: transaction at or before %s: %w", tid, err)
		}
		last = Transaction{TID: t.TID, Chain: t.Chain}
	}
	return last.TID, last.Chain, nil
}

// TxnAfter is TxnSeeker.TxnAfter on any Storage; stores without the
// capability answer with one step of their Iterator.
func TxnAfter(ctx context.Context, s Storage, tid TID) (TID, Checksum, error) {
	if k, ok := s.(TxnSeeker); ok {
		return k.TxnAfter(ctx, tid)
	}
	if tid == ^TID(0) {
		return 0, Checksum{}, fmt.Errorf("storage: transaction after %s: %w", tid, ErrNotFound)
	}
	it, err := s.Iterator(ctx, tid+1, 0)
	if err != nil {
		return 0, Checksum{}, fmt.Errorf("storage: transaction after %s: %w", tid, err)
	}
	defer it.Close()
	t, err := it.Next(ctx)
	if errors.Is(err, io.EOF) {
		return 0, Checksum{}, fmt.Errorf("storage: transaction after %s: %w", tid, ErrNotFound)
	}
	if err != nil {
		return 0, Checksum{}, fmt.Errorf("storage: transaction after %s: %w", tid, err)
	}
	return t.TID, t.Chain, nil
}
