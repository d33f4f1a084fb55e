package faultstore

import (
	"context"
	"iter"

	"github.com/repld/repld/storage"
)

// The optional capabilities pass through to the inner store (which answers
// as storage.ListObjects, storage.TxnAtOrBefore and storage.TxnAfter do
// when it lacks them), with faults injectable like every other operation.
var (
	_ storage.ObjectLister = (*Store)(nil)
	_ storage.TxnSeeker    = (*Store)(nil)
)

// Objects implements storage.ObjectLister. An injected failure is the
// sequence's only element.
func (s *Store) Objects(ctx context.Context, from, to storage.OID, at storage.TID) iter.Seq2[storage.ObjectState, error] {
	if err := s.fail(OpObjects); err != nil {
		return func(yield func(storage.ObjectState, error) bool) { yield(storage.ObjectState{}, err) }
	}
	return storage.ListObjects(ctx, s.inner, from, to, at)
}

// TxnAtOrBefore implements storage.TxnSeeker (faults: OpTxnSeek).
func (s *Store) TxnAtOrBefore(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.fail(OpTxnSeek); err != nil {
		return 0, storage.Checksum{}, err
	}
	return storage.TxnAtOrBefore(ctx, s.inner, tid)
}

// TxnAfter implements storage.TxnSeeker (faults: OpTxnSeek).
func (s *Store) TxnAfter(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.fail(OpTxnSeek); err != nil {
		return 0, storage.Checksum{}, err
	}
	return storage.TxnAfter(ctx, s.inner, tid)
}
