package storagetest

import (
	"testing"

	"github.com/repld/repld/storage"
)

// commitTxn commits txn through storage.CommitTxn, in one step where the
// store offers it.
func commitTxn(t *testing.T, txn storage.Txn) storage.Commit {
	t.Helper()
	c, err := storage.CommitTxn(guard(t), txn)
	if err != nil {
		t.Fatalf("CommitTxn: %v", err)
	}
	return c
}

// testCommitTxn commits through storage.CommitTxn: a one-step commit, for
// a store that offers it, must be exactly a Vote and a Finish.
func testCommitTxn(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()

	ws := []write{{2, 0, []byte("two")}, {1, 0, []byte("one")}}
	c1 := commitTxn(t, begin(t, s, meta1, ws...))
	if c1.TID == 0 {
		t.Fatal("CommitTxn returned TID 0")
	}
	if want := m.apply(c1.TID, meta1, ws); c1.Chain != want {
		t.Fatalf("first commit: chain %s; want %s", c1.Chain, want)
	}
	ws = []write{{1, c1.TID, []byte("one v2")}}
	txn := begin(t, s, storage.TxnMeta{}, ws...)
	c2 := commitTxn(t, txn)
	if c2.TID <= c1.TID {
		t.Fatalf("second TID %s not after first %s", c2.TID, c1.TID)
	}
	if want := m.apply(c2.TID, storage.TxnMeta{}, ws); c2.Chain != want {
		t.Fatalf("second commit: chain %s; want %s", c2.Chain, want)
	}
	if tid := last(t, s); tid != c2.TID {
		t.Fatalf("LastTransaction = %s; want %s", tid, c2.TID)
	}
	m.check(t, s)
	c, err := storage.CommitTxn(guard(t), txn)
	wantErr(t, "CommitTxn of a committed transaction", err, storage.ErrTxnState)
	if c != (storage.Commit{}) {
		t.Fatalf("CommitTxn of a committed transaction returned %+v; want the zero Commit", c)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after CommitTxn: %v; want nil (a no-op)", err)
	}

	// A conflict: nothing of the transaction is committed, it is aborted,
	// and the commit lock is free. other is in its store phase meanwhile.
	other := begin(t, s, meta1, write{8, 0, []byte("other")})
	txn = begin(t, s, meta1, write{5, 0, []byte("innocent")}, write{1, 0, []byte("x")})
	c, err = storage.CommitTxn(guard(t), txn)
	wantConflict(t, err, storage.ConflictError{OID: 1, Expected: 0, Actual: c2.TID})
	if c != (storage.Commit{}) {
		t.Fatalf("CommitTxn of a conflict returned %+v; want the zero Commit", c)
	}
	_, err = txn.Finish(ctx)
	wantErr(t, "Finish after a failed CommitTxn", err, storage.ErrTxnState)
	wantErr(t, "Vote after a failed CommitTxn", txn.Vote(guard(t)), storage.ErrTxnState)
	wantErr(t, "Store after a failed CommitTxn", txn.Store(ctx, 6, 0, nil), storage.ErrTxnState)
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after a failed CommitTxn: %v", err)
	}
	if tid := last(t, s); tid != c2.TID {
		t.Fatalf("LastTransaction = %s after a conflict; want %s", tid, c2.TID)
	}
	wantNotFound(t, s, 5)
	m.check(t, s)

	ws = []write{{8, 0, []byte("other")}}
	c3 := commitTxn(t, other)
	if c3.TID <= c2.TID {
		t.Fatalf("TID after the conflict %s not after %s", c3.TID, c2.TID)
	}
	if want := m.apply(c3.TID, meta1, ws); c3.Chain != want {
		t.Fatalf("commit after the conflict: chain %s; want %s", c3.Chain, want)
	}
	ws = []write{{1, c2.TID, []byte("one v3")}}
	c4 := commit(t, s, storage.TxnMeta{}, ws...)
	if want := m.apply(c4.TID, storage.TxnMeta{}, ws); c4.Chain != want {
		t.Fatalf("two-phase commit after CommitTxn: chain %s; want %s", c4.Chain, want)
	}
	m.check(t, s)
}
