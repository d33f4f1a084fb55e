package faultstore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/repld/repld/storage"
)

// ErrInjected matches every error this package injects.
var ErrInjected = errors.New("faultstore: injected failure")

// Op names an operation faults can be injected into.
type Op int

// The operations. OpNext is TransactionIterator.Next; OpObjects and
// OpTxnSeek are the optional capabilities storage.ObjectLister and
// storage.TxnSeeker (both of its methods).
const (
	OpLoad Op = iota + 1
	OpLoadBefore
	OpHistory
	OpLastTransaction
	OpChain
	OpNewOID
	OpIterator
	OpNext
	OpPack
	OpBegin
	OpStore
	OpVote
	OpFinish
	OpFinishAt
	OpObjects
	OpTxnSeek
	numOps
)

var opNames = [numOps]string{
	OpLoad:            "load",
	OpLoadBefore:      "load before",
	OpHistory:         "history",
	OpLastTransaction: "last transaction",
	OpChain:           "chain",
	OpNewOID:          "new OID",
	OpIterator:        "iterator",
	OpNext:            "iterator next",
	OpPack:            "pack",
	OpBegin:           "begin",
	OpStore:           "store",
	OpVote:            "vote",
	OpFinish:          "finish",
	OpFinishAt:        "finish at",
	OpObjects:         "objects",
	OpTxnSeek:         "transaction seek",
}

// String names the operation as error messages do.
func (op Op) String() string {
	if op <= 0 || op >= numOps {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// fault is what is set for one operation.
type fault struct {
	err    error // nil: ErrInjected alone
	n      int   // calls left to fail; ignored if always
	always bool
}

// Store is a storage.Storage that forwards to an inner store, failing the
// operations a test chose. Create it with New.
type Store struct {
	inner storage.Storage

	mu     sync.Mutex
	faults [numOps]fault
	calls  [numOps]int
}

var _ storage.Storage = (*Store)(nil)

// New wraps inner. No fault is set.
func New(inner storage.Storage) *Store { return &Store{inner: inner} }

// Inner returns the wrapped store, for checks that must bypass the faults.
func (s *Store) Inner() storage.Storage { return s.inner }

// FailNext makes the next n calls of op fail with err (nil: ErrInjected
// alone), replacing what was set for op. n <= 0 clears op.
func (s *Store) FailNext(op Op, err error, n int) {
	s.set(op, fault{err: err, n: max(n, 0)})
}

// FailAlways makes every call of op fail with err (nil: ErrInjected alone)
// until Clear.
func (s *Store) FailAlways(op Op, err error) {
	s.set(op, fault{err: err, always: true})
}

func (s *Store) set(op Op, f fault) {
	if op <= 0 || op >= numOps {
		// A programming error in a test, not input: fail loudly.
		panic(fmt.Sprintf("faultstore: unknown %s", op))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = f
}

// Clear removes every fault.
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = [numOps]fault{}
}

// Calls returns how many times op was called, failed or not.
func (s *Store) Calls(op Op) int {
	if op <= 0 || op >= numOps {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// fail counts a call of op and returns the error to inject, or nil.
func (s *Store) fail(op Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
	f := &s.faults[op]
	switch {
	case f.always:
	case f.n > 0:
		f.n--
	default:
		return nil
	}
	if f.err == nil {
		return fmt.Errorf("%s: %w", op, ErrInjected)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrInjected, f.err)
}

// Load implements storage.Storage.
func (s *Store) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	if err := s.fail(OpLoad); err != nil {
		return nil, 0, err
	}
	return s.inner.Load(ctx, oid)
}

// LoadBefore implements storage.Storage.
func (s *Store) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	if err := s.fail(OpLoadBefore); err != nil {
		return nil, 0, 0, err
	}
	return s.inner.LoadBefore(ctx, oid, before)
}

// History implements storage.Storage.
func (s *Store) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	if err := s.fail(OpHistory); err != nil {
		return nil, err
	}
	return s.inner.History(ctx, oid, n)
}

// LastTransaction implements storage.Storage.
func (s *Store) LastTransaction(ctx context.Context) (storage.TID, error) {
	if err := s.fail(OpLastTransaction); err != nil {
		return 0, err
	}
	return s.inner.LastTransaction(ctx)
}

// Chain implements storage.Storage.
func (s *Store) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	if err := s.fail(OpChain); err != nil {
		return storage.Checksum{}, err
	}
	return s.inner.Chain(ctx, tid)
}

// NewOID implements storage.Storage.
func (s *Store) NewOID(ctx context.Context) (storage.OID, error) {
	if err := s.fail(OpNewOID); err != nil {
		return 0, err
	}
	return s.inner.NewOID(ctx)
}

// Iterator implements storage.Storage.
func (s *Store) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	if err := s.fail(OpIterator); err != nil {
		return nil, err
	}
	it, err := s.inner.Iterator(ctx, from, to)
	if err != nil {
		return nil, err
	}
	return &iterator{s: s, inner: it}, nil
}

type iterator struct {
	s     *Store
	inner storage.TransactionIterator
}

// Next implements storage.TransactionIterator.
func (it *iterator) Next(ctx context.Context) (*storage.Transaction, error) {
	if err := it.s.fail(OpNext); err != nil {
		return nil, err
	}
	return it.inner.Next(ctx)
}

// Close implements storage.TransactionIterator.
func (it *iterator) Close() error { return it.inner.Close() }

// Pack implements storage.Storage.
func (s *Store) Pack(ctx context.Context, before storage.TID) error {
	if err := s.fail(OpPack); err != nil {
		return err
	}
	return s.inner.Pack(ctx, before)
}

// Begin implements storage.Storage.
func (s *Store) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	if err := s.fail(OpBegin); err != nil {
		return nil, err
	}
	inner, err := s.inner.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	return &txn{s: s, inner: inner}, nil
}

// Close implements storage.Storage; it closes the inner store.
func (s *Store) Close() error { return s.inner.Close() }

type txn struct {
	s     *Store
	inner storage.Txn
}

// Store implements storage.Txn. An injected failure leaves the staged
// transaction as it was.
func (t *txn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := t.s.fail(OpStore); err != nil {
		return err
	}
	return t.inner.Store(ctx, oid, serial, data)
}

// Vote implements storage.Txn.
func (t *txn) Vote(ctx context.Context) error {
	if err := t.s.fail(OpVote); err != nil {
		return t.abort(ctx, err)
	}
	return t.inner.Vote(ctx)
}

// Finish implements storage.Txn.
func (t *txn) Finish(ctx context.Context) (storage.Commit, error) {
	if err := t.s.fail(OpFinish); err != nil {
		return storage.Commit{}, t.abort(ctx, err)
	}
	return t.inner.Finish(ctx)
}

// FinishAt implements storage.Txn.
func (t *txn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	if err := t.s.fail(OpFinishAt); err != nil {
		return storage.Commit{}, t.abort(ctx, err)
	}
	return t.inner.FinishAt(ctx, tid, expect)
}

// FinishAtDeferred implements storage.DeferredFinisher with the fault of
// FinishAt, so a replica pipelines its commits over a faultstore as it
// does over the inner store.
func (t *txn) FinishAtDeferred(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, func() error, error) {
	if err := t.s.fail(OpFinishAt); err != nil {
		return storage.Commit{}, nil, t.abort(ctx, err)
	}
	return storage.FinishAtDeferred(ctx, t.inner, tid, expect)
}

// abort aborts the inner transaction after an injected failure, so the
// inner store keeps no trace of it, and returns the injected error.
func (t *txn) abort(ctx context.Context, injected error) error {
	if err := t.inner.Abort(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("%w (and aborting the transaction: %w)", injected, err)
	}
	return injected
}

// Abort implements storage.Txn.
func (t *txn) Abort(ctx context.Context) error { return t.inner.Abort(ctx) }
