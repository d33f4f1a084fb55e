package faultstore_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/storage/storagetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T) *faultstore.Store {
	t.Helper()
	inner, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatalf("memstore.New: %v", err)
	}
	s := faultstore.New(inner)
	t.Cleanup(func() { s.Close() })
	return s
}

// With no fault set, the wrapper is the inner store.
func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T) storage.Storage { return open(t) },
	})
}

func commit(t *testing.T, s storage.Storage, oid storage.OID, data string) storage.Commit {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // deadlock guard
	defer cancel()
	txn, err := s.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if err := txn.Store(ctx, oid, 0, []byte(data)); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatalf("Vote: %v", err)
	}
	c, err := txn.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return c
}

func TestFailNext(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	c := commit(t, s, 1, "x")
	s.FailNext(faultstore.OpLoad, nil, 2)
	for i := range 2 {
		_, _, err := s.Load(ctx, 1)
		if !errors.Is(err, faultstore.ErrInjected) {
			t.Fatalf("Load %d: %v; want ErrInjected", i, err)
		}
	}
	if data, serial, err := s.Load(ctx, 1); err != nil || serial != c.TID || string(data) != "x" {
		t.Fatalf("Load after the faults ran out = %q, %s, %v", data, serial, err)
	}
	if n := s.Calls(faultstore.OpLoad); n != 3 {
		t.Fatalf("Calls(OpLoad) = %d; want 3", n)
	}
	// Other operations were never affected.
	if _, err := s.LastTransaction(ctx); err != nil {
		t.Fatalf("LastTransaction: %v", err)
	}
}

func TestFailAlwaysAndClear(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	commit(t, s, 1, "x")
	s.FailAlways(faultstore.OpHistory, syscall.ENOSPC)
	for range 3 {
		_, err := s.History(ctx, 1, 0)
		if !errors.Is(err, faultstore.ErrInjected) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("History: %v; want ErrInjected and ENOSPC", err)
		}
	}
	s.Clear()
	if _, err := s.History(ctx, 1, 0); err != nil {
		t.Fatalf("History after Clear: %v", err)
	}
	s.FailNext(faultstore.OpHistory, nil, 0) // n <= 0 sets no fault
	if _, err := s.History(ctx, 1, 0); err != nil {
		t.Fatalf("History after FailNext(0): %v", err)
	}
}

func TestReadFaults(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	c := commit(t, s, 1, "x")
	calls := map[faultstore.Op]func() error{
		faultstore.OpLoad:            func() error { _, _, err := s.Load(ctx, 1); return err },
		faultstore.OpLoadBefore:      func() error { _, _, _, err := s.LoadBefore(ctx, 1, c.TID+1); return err },
		faultstore.OpHistory:         func() error { _, err := s.History(ctx, 1, 0); return err },
		faultstore.OpLastTransaction: func() error { _, err := s.LastTransaction(ctx); return err },
		faultstore.OpChain:           func() error { _, err := s.Chain(ctx, c.TID); return err },
		faultstore.OpNewOID:          func() error { _, err := s.NewOID(ctx); return err },
		faultstore.OpIterator:        func() error { _, err := s.Iterator(ctx, 0, 0); return err },
		faultstore.OpPack:            func() error { return s.Pack(ctx, c.TID) },
		faultstore.OpBegin:           func() error { _, err := s.Begin(ctx, storage.TxnMeta{}); return err },
	}
	for op, call := range calls {
		s.FailNext(op, nil, 1)
		if err := call(); !errors.Is(err, faultstore.ErrInjected) {
			t.Errorf("%s with a fault: %v; want ErrInjected", op, err)
		}
		if err := call(); err != nil {
			t.Errorf("%s after the fault: %v", op, err)
		}
	}
}

func TestIteratorNextFault(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	c1 := commit(t, s, 1, "x")
	c2 := commit(t, s, 2, "y")
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatalf("Iterator: %v", err)
	}
	defer it.Close()
	if txn, err := it.Next(ctx); err != nil || txn.TID != c1.TID {
		t.Fatalf("Next = %v, %v; want %s", txn, err, c1.TID)
	}
	s.FailNext(faultstore.OpNext, nil, 1)
	if _, err := it.Next(ctx); !errors.Is(err, faultstore.ErrInjected) {
		t.Fatalf("Next with a fault: %v; want ErrInjected", err)
	}
	// The failed call consumed nothing.
	if txn, err := it.Next(ctx); err != nil || txn.TID != c2.TID {
		t.Fatalf("Next after the fault = %v, %v; want %s", txn, err, c2.TID)
	}
}

func TestStoreFault(t *testing.T) {
	s := open(t)
	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	s.FailNext(faultstore.OpStore, syscall.EIO, 1)
	if err := txn.Store(ctx, 1, 0, []byte("lost")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Store with a fault: %v; want EIO", err)
	}
	if err := txn.Store(ctx, 2, 0, []byte("kept")); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatalf("Vote: %v", err)
	}
	if _, err := txn.Finish(ctx); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if _, _, err := s.Load(ctx, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load of the failed Store: %v; want ErrNotFound", err)
	}
	if data, _, err := s.Load(ctx, 2); err != nil || string(data) != "kept" {
		t.Fatalf("Load(2) = %q, %v", data, err)
	}
}

// A failure injected into Vote, Finish or FinishAt leaves no trace in the
// inner store and releases its commit lock.
func TestCommitFaultsLeaveNoTrace(t *testing.T) {
	for _, op := range []faultstore.Op{faultstore.OpVote, faultstore.OpFinish, faultstore.OpFinishAt} {
		t.Run(op.String(), func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			c := commit(t, s, 1, "before")
			txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("doomed")})
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			if err := txn.Store(ctx, 2, 0, []byte("doomed")); err != nil {
				t.Fatalf("Store: %v", err)
			}
			s.FailAlways(op, syscall.ENOSPC)
			switch op {
			case faultstore.OpVote:
				err = txn.Vote(ctx)
			case faultstore.OpFinish:
				if err := txn.Vote(ctx); err != nil {
					t.Fatalf("Vote: %v", err)
				}
				_, err = txn.Finish(ctx)
			case faultstore.OpFinishAt:
				if err := txn.Vote(ctx); err != nil {
					t.Fatalf("Vote: %v", err)
				}
				_, err = txn.FinishAt(ctx, c.TID+1, storage.Checksum{})
			}
			if !errors.Is(err, faultstore.ErrInjected) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("%s with a fault: %v; want ErrInjected and ENOSPC", op, err)
			}
			s.Clear()
			inner := s.Inner()
			if last, err := inner.LastTransaction(ctx); err != nil || last != c.TID {
				t.Fatalf("inner LastTransaction = %s, %v; want %s", last, err, c.TID)
			}
			if _, _, err := inner.Load(ctx, 2); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("inner Load of the failed transaction's object: %v; want ErrNotFound", err)
			}
			if _, err := txn.Finish(ctx); !errors.Is(err, storage.ErrTxnState) {
				t.Fatalf("Finish after the injected failure: %v; want ErrTxnState", err)
			}
			if err := txn.Abort(ctx); err != nil {
				t.Fatalf("Abort after the injected failure: %v", err)
			}
			// The commit lock is free: the next transaction commits.
			if next := commit(t, s, 3, "after"); next.TID <= c.TID {
				t.Fatalf("next TID %s not after %s", next.TID, c.TID)
			}
		})
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[faultstore.Op]string{
		faultstore.OpLoad:     "load",
		faultstore.OpNext:     "iterator next",
		faultstore.OpFinishAt: "finish at",
		faultstore.Op(0):      "Op(0)",
		faultstore.Op(99):     "Op(99)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q; want %q", int(op), got, want)
		}
	}
}
