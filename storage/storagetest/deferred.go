package storagetest

import (
	"testing"

	"github.com/repld/repld/storage"
)

// testFinishAtDeferred checks storage.FinishAtDeferred, the capability
// where a store has it and the fallback where it has not: a commit is
// whole once wait returns, and FinishAt's errors leave the transaction
// voted with no wait to call.
func testFinishAtDeferred(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	m.apply(commit(t, s, meta1, write{1, 0, []byte("one")}).TID, meta1, []write{{1, 0, []byte("one")}})

	// Several commits written before any of them is waited for, as a
	// replica pipelines them: each wait then covers its own commit.
	var waits []func() error
	for i := range 3 {
		lastTID, prev := m.last()
		tid := lastTID + 1
		ws := []write{{storage.OID(2 + i), 0, []byte{byte(i)}}}
		expect := chainAfter(prev, tid, meta1, ws)
		txn := begin(t, s, meta1, ws...)
		vote(t, txn)
		c, wait, err := storage.FinishAtDeferred(ctx, txn, tid, expect)
		if err != nil || wait == nil {
			t.Fatalf("FinishAtDeferred(%s) = %+v, wait %v, %v", tid, c, wait != nil, err)
		}
		if c.TID != tid || c.Chain != expect {
			t.Fatalf("FinishAtDeferred(%s) = %+v; want chain %s", tid, c, expect)
		}
		m.apply(tid, meta1, ws)
		waits = append(waits, wait)
	}
	for i, wait := range waits {
		if err := wait(); err != nil {
			t.Fatalf("wait of commit %d: %v", i, err)
		}
	}
	m.check(t, s)

	// A TID not after the last one and a wrong chain: no wait, still
	// voted, so a good TID commits it.
	lastTID, prev := m.last()
	ws := []write{{9, 0, []byte("late")}}
	txn := begin(t, s, meta1, ws...)
	vote(t, txn)
	if _, wait, err := storage.FinishAtDeferred(ctx, txn, lastTID, storage.Checksum{}); wait != nil {
		t.Fatalf("FinishAtDeferred of an old TID returned a wait (err %v)", err)
	} else {
		wantErr(t, "FinishAtDeferred of an old TID", err, storage.ErrTIDOrder)
	}
	if _, wait, err := storage.FinishAtDeferred(ctx, txn, lastTID+1, storage.Checksum{1}); wait != nil {
		t.Fatalf("FinishAtDeferred with a wrong chain returned a wait (err %v)", err)
	} else {
		wantErr(t, "FinishAtDeferred with a wrong chain", err, storage.ErrChainMismatch)
	}
	m.check(t, s)
	expect := chainAfter(prev, lastTID+1, meta1, ws)
	_, wait, err := storage.FinishAtDeferred(ctx, txn, lastTID+1, expect)
	if err != nil {
		t.Fatalf("FinishAtDeferred after its errors: %v", err)
	}
	if err := wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	m.apply(lastTID+1, meta1, ws)
	m.check(t, s)
}
