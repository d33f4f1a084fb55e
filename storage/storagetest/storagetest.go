package storagetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/storage"
)

// Harness tells the suite how to get stores.
type Harness struct {
	// Open returns a new, empty store for one subtest. It registers the
	// store's cleanup with t.Cleanup. Required.
	Open func(t *testing.T) storage.Storage
	// Reopen, if non-nil, closes s and opens the same data again, as a
	// process restart would. The persistence tests are skipped without it.
	Reopen func(t *testing.T, s storage.Storage) storage.Storage
}

// guardTimeout bounds every call that may block (Vote waiting for the
// commit lock, goroutines the suite starts). Far above any correct
// duration; reaching it means a deadlock.
const guardTimeout = 2 * time.Minute

// Run runs the conformance suite against the stores h opens.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("storagetest: Harness.Open is nil; set it to a function returning a new, empty store")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"TwoPhaseCommit", testTwoPhaseCommit},
		{"Conflicts", testConflicts},
		{"Abort", testAbort},
		{"TxnState", testTxnState},
		{"CommitTxn", testCommitTxn},
		{"Model", testModel},
		{"LoadBefore", testLoadBefore},
		{"Iterator", testIterator},
		{"Pack", testPack},
		{"FinishAt", testFinishAt},
		{"FinishAtDeferred", testFinishAtDeferred},
		{"Replay", testReplay},
		{"ConcurrentStorePhase", testConcurrentStorePhase},
		{"CommitLock", testCommitLock},
		{"NewOID", testNewOID},
		{"ObjectSizes", testObjectSizes},
		{"Copies", testCopies},
		{"Objects", testObjects},
		{"Closed", testClosed},
		{"Persistence", testPersistence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// begin starts a transaction and stores ws.
func begin(t *testing.T, s storage.Storage, meta storage.TxnMeta, ws ...write) storage.Txn {
	t.Helper()
	txn, err := s.Begin(t.Context(), meta)
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	for _, w := range ws {
		if err := txn.Store(t.Context(), w.oid, w.serial, w.data); err != nil {
			t.Fatalf("Store(%s, %s): %v", w.oid, w.serial, err)
		}
	}
	return txn
}

func vote(t *testing.T, txn storage.Txn) {
	t.Helper()
	if err := txn.Vote(guard(t)); err != nil {
		t.Fatalf("Vote: %v", err)
	}
}

func finish(t *testing.T, txn storage.Txn) storage.Commit {
	t.Helper()
	c, err := txn.Finish(t.Context())
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return c
}

// commit runs a whole two-phase commit of ws.
func commit(t *testing.T, s storage.Storage, meta storage.TxnMeta, ws ...write) storage.Commit {
	t.Helper()
	txn := begin(t, s, meta, ws...)
	vote(t, txn)
	return finish(t, txn)
}

// commitAt runs a two-phase commit of ws finished with FinishAt.
func commitAt(t *testing.T, s storage.Storage, tid storage.TID, expect storage.Checksum, meta storage.TxnMeta, ws ...write) storage.Commit {
	t.Helper()
	txn := begin(t, s, meta, ws...)
	vote(t, txn)
	c, err := txn.FinishAt(t.Context(), tid, expect)
	if err != nil {
		t.Fatalf("FinishAt(%s): %v", tid, err)
	}
	return c
}

func last(t *testing.T, s storage.Storage) storage.TID {
	t.Helper()
	tid, err := s.LastTransaction(t.Context())
	if err != nil {
		t.Fatalf("LastTransaction: %v", err)
	}
	return tid
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: %v; want %v", what, err, target)
	}
}

func wantNotFound(t *testing.T, s storage.Storage, oid storage.OID) {
	t.Helper()
	_, _, err := s.Load(t.Context(), oid)
	wantErr(t, "Load("+oid.String()+")", err, storage.ErrNotFound)
}

func wantConflict(t *testing.T, err error, want storage.ConflictError) {
	t.Helper()
	var cerr *storage.ConflictError
	if !errors.Is(err, storage.ErrConflict) || !errors.As(err, &cerr) {
		t.Fatalf("Vote: %v; want a *ConflictError", err)
	}
	if *cerr != want {
		t.Fatalf("Vote: conflict %+v; want %+v", *cerr, want)
	}
}

var meta1 = storage.TxnMeta{User: []byte("alice"), Description: []byte("first"), Extension: []byte{0x80, 0x03, '}', 'q'}}

func testTwoPhaseCommit(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	if tid := last(t, s); tid != 0 {
		t.Fatalf("LastTransaction of an empty store = %s; want 0", tid)
	}
	if c, err := s.Chain(ctx, 0); err != nil || !c.IsZero() {
		t.Fatalf("Chain(0) = %s, %v; want the zero checksum", c, err)
	}
	wantNotFound(t, s, 1)
	if got := iterate(t, s, 0, 0); len(got) != 0 {
		t.Fatalf("an empty store iterates %d transactions", len(got))
	}

	m := newModel()
	ws := []write{{2, 0, []byte("two")}, {1, 0, []byte("one-draft")}, {1, 0, []byte("one")}}
	c1 := commit(t, s, meta1, ws...)
	if c1.TID == 0 {
		t.Fatal("Finish returned TID 0")
	}
	if want := m.apply(c1.TID, meta1, ws); c1.Chain != want {
		t.Fatalf("first commit: chain %s; want %s (zero prev)", c1.Chain, want)
	}
	m.check(t, s)

	ws = []write{{1, c1.TID, []byte("one v2")}}
	c2 := commit(t, s, storage.TxnMeta{}, ws...)
	if c2.TID <= c1.TID {
		t.Fatalf("second TID %s not after first %s", c2.TID, c1.TID)
	}
	if want := m.apply(c2.TID, storage.TxnMeta{}, ws); c2.Chain != want {
		t.Fatalf("second commit: chain %s; want %s", c2.Chain, want)
	}

	// A transaction without records commits too: metadata alone.
	c3 := commit(t, s, storage.TxnMeta{Description: []byte("empty")})
	if c3.TID <= c2.TID {
		t.Fatalf("empty transaction TID %s not after %s", c3.TID, c2.TID)
	}
	if want := m.apply(c3.TID, storage.TxnMeta{Description: []byte("empty")}, nil); c3.Chain != want {
		t.Fatalf("empty transaction: chain %s; want %s", c3.Chain, want)
	}
	m.check(t, s)
}

func testConflicts(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	c1 := commit(t, s, meta1, write{1, 0, []byte("v1")})
	c2 := commit(t, s, meta1, write{1, c1.TID, []byte("v2")})

	cases := []struct {
		name string
		w    write
		want storage.ConflictError
	}{
		{"stale serial", write{1, c1.TID, []byte("x")}, storage.ConflictError{OID: 1, Expected: c1.TID, Actual: c2.TID}},
		{"new object that exists", write{1, 0, []byte("x")}, storage.ConflictError{OID: 1, Expected: 0, Actual: c2.TID}},
		{"serial for an object that does not exist", write{7, c2.TID, []byte("x")}, storage.ConflictError{OID: 7, Expected: c2.TID, Actual: 0}},
	}
	for _, tc := range cases {
		// A good write next to the bad one must not be applied either.
		txn := begin(t, s, meta1, write{5, 0, []byte("innocent")}, tc.w)
		wantConflict(t, txn.Vote(guard(t)), tc.want)
		_, err := txn.Finish(ctx)
		wantErr(t, tc.name+": Finish after a failed Vote", err, storage.ErrTxnState)
		wantErr(t, tc.name+": Store after a failed Vote", txn.Store(ctx, 6, 0, nil), storage.ErrTxnState)
		if err := txn.Abort(ctx); err != nil {
			t.Fatalf("%s: Abort after a failed Vote: %v", tc.name, err)
		}
		if tid := last(t, s); tid != c2.TID {
			t.Fatalf("%s: LastTransaction = %s after a conflict; want %s", tc.name, tid, c2.TID)
		}
		wantNotFound(t, s, 5)
	}

	// Two concurrent transactions creating the same object: the second to
	// vote conflicts with the first.
	a := begin(t, s, meta1, write{9, 0, []byte("a")})
	b := begin(t, s, meta1, write{9, 0, []byte("b")})
	vote(t, a)
	ca := finish(t, a)
	wantConflict(t, b.Vote(guard(t)), storage.ConflictError{OID: 9, Expected: 0, Actual: ca.TID})
	if data, serial, err := s.Load(ctx, 9); err != nil || serial != ca.TID || string(data) != "a" {
		t.Fatalf("Load(9) = %q, %s, %v; want \"a\", %s", data, serial, err, ca.TID)
	}

	// A failed Vote released the commit lock: the next commit goes through.
	c := commit(t, s, meta1, write{1, c2.TID, []byte("v3")})
	if c.TID <= ca.TID {
		t.Fatalf("TID %s not after %s", c.TID, ca.TID)
	}
}

func testAbort(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	ws := []write{{1, 0, []byte("base")}}
	c0 := commit(t, s, meta1, ws...)
	m.apply(c0.TID, meta1, ws)

	// Aborted in the store phase, and after Vote (holding the commit lock).
	for _, voted := range []bool{false, true} {
		txn := begin(t, s, meta1, write{10, 0, []byte("new")}, write{1, c0.TID, []byte("changed")})
		if voted {
			vote(t, txn)
		}
		if err := txn.Abort(ctx); err != nil {
			t.Fatalf("Abort (voted %v): %v", voted, err)
		}
		if err := txn.Abort(ctx); err != nil {
			t.Fatalf("second Abort (voted %v): %v", voted, err)
		}
		wantNotFound(t, s, 10)
		m.check(t, s)
	}

	// The next commit chains from the last committed transaction: the
	// aborted ones left nothing in the chain either.
	ws = []write{{10, 0, []byte("after")}}
	c := commit(t, s, meta1, ws...)
	if want := m.apply(c.TID, meta1, ws); c.Chain != want {
		t.Fatalf("chain after aborts %s; want %s", c.Chain, want)
	}
	m.check(t, s)
}

func testTxnState(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()

	txn := begin(t, s, meta1, write{1, 0, []byte("x")})
	_, err := txn.Finish(ctx)
	wantErr(t, "Finish before Vote", err, storage.ErrTxnState)
	_, err = txn.FinishAt(ctx, storage.TIDFromTime(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)), storage.Checksum{})
	wantErr(t, "FinishAt before Vote", err, storage.ErrTxnState)
	vote(t, txn)
	wantErr(t, "Store after Vote", txn.Store(ctx, 2, 0, []byte("y")), storage.ErrTxnState)
	wantErr(t, "Vote after Vote", txn.Vote(guard(t)), storage.ErrTxnState)
	c := finish(t, txn)
	_, err = txn.Finish(ctx)
	wantErr(t, "second Finish", err, storage.ErrTxnState)
	wantErr(t, "Store after Finish", txn.Store(ctx, 2, 0, []byte("y")), storage.ErrTxnState)
	wantErr(t, "Vote after Finish", txn.Vote(guard(t)), storage.ErrTxnState)
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after Finish: %v; want nil (a no-op)", err)
	}
	if data, serial, err := s.Load(ctx, 1); err != nil || serial != c.TID || string(data) != "x" {
		t.Fatalf("Load(1) after Abort of a finished transaction = %q, %s, %v", data, serial, err)
	}
	wantNotFound(t, s, 2)

	txn = begin(t, s, meta1, write{3, 0, []byte("z")})
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	wantErr(t, "Store after Abort", txn.Store(ctx, 3, 0, []byte("z")), storage.ErrTxnState)
	wantErr(t, "Vote after Abort", txn.Vote(guard(t)), storage.ErrTxnState)
	_, err = txn.Finish(ctx)
	wantErr(t, "Finish after Abort", err, storage.ErrTxnState)
	wantNotFound(t, s, 3)

	// None of the misuse above left the commit lock taken.
	commit(t, s, meta1, write{3, 0, []byte("z")})
}

func testModel(t *testing.T, h Harness) {
	s := h.Open(t)
	m := newModel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3 {
		history(t, s, m, rng, 60, 30)
		m.check(t, s)
	}
}

func testLoadBefore(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	const oid = 4
	c1 := commit(t, s, meta1, write{oid, 0, []byte("r1")})
	commit(t, s, meta1, write{5, 0, []byte("other")})
	c2 := commit(t, s, meta1, write{oid, c1.TID, []byte("r2")})
	c3 := commit(t, s, meta1, write{oid, c2.TID, []byte("r3")})
	cases := []struct {
		before     storage.TID
		data       string
		start, end storage.TID
	}{
		{0, "", 0, 0},
		{c1.TID, "", 0, 0}, // before creation
		{c1.TID + 1, "r1", c1.TID, c2.TID},
		{c2.TID, "r1", c1.TID, c2.TID},
		{c2.TID + 1, "r2", c2.TID, c3.TID},
		{c3.TID, "r2", c2.TID, c3.TID},
		{c3.TID + 1, "r3", c3.TID, 0},
		{^storage.TID(0), "r3", c3.TID, 0},
	}
	for _, tc := range cases {
		data, start, end, err := s.LoadBefore(ctx, oid, tc.before)
		if tc.data == "" {
			wantErr(t, "LoadBefore(before creation "+tc.before.String()+")", err, storage.ErrNotFound)
			continue
		}
		if err != nil || string(data) != tc.data || start != tc.start || end != tc.end {
			t.Errorf("LoadBefore(%s) = %q, %s, %s, %v; want %q, %s, %s", tc.before, data, start, end, err, tc.data, tc.start, tc.end)
		}
	}
	_, _, _, err := s.LoadBefore(ctx, 77, c3.TID+1)
	wantErr(t, "LoadBefore of a missing object", err, storage.ErrNotFound)
	_, err = s.History(ctx, 77, 0)
	wantErr(t, "History of a missing object", err, storage.ErrNotFound)
	wantNotFound(t, s, 77)
	for n, want := range map[int]int{-1: 3, 0: 3, 1: 1, 2: 2, 3: 3, 10: 3} {
		hist, err := s.History(ctx, oid, n)
		if err != nil || len(hist) != want || hist[0].TID != c3.TID || hist[len(hist)-1].TID != []storage.TID{c3.TID, c2.TID, c1.TID}[want-1] {
			t.Errorf("History(%d) = %v, %v; want the %d newest revisions", n, hist, err, want)
		}
	}
}

func testIterator(t *testing.T, h Harness) {
	s := h.Open(t)
	m := newModel()
	steps := []struct {
		meta storage.TxnMeta
		ws   []write
	}{
		{meta1, []write{{2, 0, []byte("b")}, {1, 0, []byte("a")}}},
		{storage.TxnMeta{User: []byte("bob")}, []write{{3, 0, []byte("c")}}},
		{storage.TxnMeta{Extension: []byte("ext")}, nil},
		{storage.TxnMeta{Description: []byte("many")}, []write{{9, 0, []byte("i")}, {5, 0, []byte{}}, {2, 0, []byte("b2")}, {9, 0, []byte("i2")}}},
	}
	var tids []storage.TID
	for _, st := range steps {
		for i := range st.ws {
			st.ws[i].serial = m.serial(st.ws[i].oid)
		}
		c := commit(t, s, st.meta, st.ws...)
		if want := m.apply(c.TID, st.meta, st.ws); c.Chain != want {
			t.Fatalf("chain %s; want %s", c.Chain, want)
		}
		tids = append(tids, c.TID)
	}
	t1, t2, t3, t4 := tids[0], tids[1], tids[2], tids[3]
	for _, r := range [][2]storage.TID{
		{0, 0}, {t1, t4}, {t2, t3}, {t2, 0}, {t1 + 1, t4 - 1}, {t4, t4}, {t4, 0},
		{t4 + 1, 0}, {t3, t2}, {0, t1 - 1}, {0, t1}, {t1, t1},
	} {
		m.checkIterator(t, s, r[0], r[1])
	}
}

func testPack(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	rng := rand.New(rand.NewPCG(3, 4))
	history(t, s, m, rng, 60, 12)
	// An object written only after the pack point keeps all its revisions.
	ws := []write{{100, 0, []byte("late")}}
	mid := m.txns[len(m.txns)/2].TID
	history(t, s, m, rng, 20, 12)
	c := commit(t, s, meta1, ws...)
	m.apply(c.TID, meta1, ws)
	history(t, s, m, rng, 10, 12)

	if err := s.Pack(ctx, 0); err != nil {
		t.Fatalf("Pack(0): %v", err)
	}
	m.check(t, s) // nothing removed
	// Pack between two transactions, then exactly at one.
	for _, before := range []storage.TID{mid - 1, mid, m.txns[len(m.txns)*3/4].TID} {
		if err := s.Pack(ctx, before); err != nil {
			t.Fatalf("Pack(%s): %v", before, err)
		}
		m.pack(before)
		m.check(t, s)
	}
	// Later commits and reads are unaffected.
	history(t, s, m, rng, 10, 12)
	m.check(t, s)
	// Packing past the last transaction keeps only current revisions.
	lastTID, _ := m.last()
	if err := s.Pack(ctx, lastTID+1); err != nil {
		t.Fatalf("Pack(%s): %v", lastTID+1, err)
	}
	m.pack(lastTID + 1)
	m.check(t, s)
	for oid, revs := range m.revs {
		if len(revs) != 1 {
			t.Fatalf("model keeps %d revisions of %s after a full pack", len(revs), oid)
		}
	}
}

func testFinishAt(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	y2000 := storage.TIDFromTime(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	y2200 := storage.TIDFromTime(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))

	ws := []write{{1, 0, []byte("restored")}}
	c := commitAt(t, s, y2000, storage.Checksum{}, meta1, ws...)
	if want := m.apply(y2000, meta1, ws); c.TID != y2000 || c.Chain != want {
		t.Fatalf("FinishAt(%s) = %+v; want TID %s chain %s", y2000, c, y2000, want)
	}
	ws = []write{{1, y2000, []byte("now")}}
	c = commit(t, s, meta1, ws...)
	if c.TID <= y2000 {
		t.Fatalf("Finish after FinishAt(%s) gave %s", y2000, c.TID)
	}
	m.apply(c.TID, meta1, ws)

	// A TID in the future, with the right expected chain.
	ws = []write{{2, 0, []byte("future")}}
	_, prev := m.last()
	expect := chainAfter(prev, y2200, meta1, ws)
	if c := commitAt(t, s, y2200, expect, meta1, ws...); c.TID != y2200 || c.Chain != expect {
		t.Fatalf("FinishAt(%s, right chain) = %+v; want chain %s", y2200, c, expect)
	}
	m.apply(y2200, meta1, ws)
	ws = []write{{2, y2200, []byte("after the future")}}
	c = commit(t, s, meta1, ws...)
	if c.TID <= y2200 {
		t.Fatalf("Finish after FinishAt(%s) gave %s", y2200, c.TID)
	}
	m.apply(c.TID, meta1, ws)
	m.check(t, s)

	// TIDs not after the last one; the transaction stays voted, so a good
	// TID still commits it.
	lastTID, _ := m.last()
	ws = []write{{3, 0, []byte("late")}}
	txn := begin(t, s, meta1, ws...)
	vote(t, txn)
	for _, tid := range []storage.TID{lastTID, lastTID - 1, y2000} {
		_, err := txn.FinishAt(ctx, tid, storage.Checksum{})
		wantErr(t, "FinishAt("+tid.String()+") with last "+lastTID.String(), err, storage.ErrTIDOrder)
		m.check(t, s)
	}
	if _, err := txn.FinishAt(ctx, lastTID+1, storage.Checksum{}); err != nil {
		t.Fatalf("FinishAt(%s) after ErrTIDOrder: %v", lastTID+1, err)
	}
	m.apply(lastTID+1, meta1, ws)

	// ErrTIDOrder, then Abort: nothing committed, lock released.
	txn = begin(t, s, meta1, write{4, 0, []byte("never")})
	vote(t, txn)
	_, err := txn.FinishAt(ctx, lastTID, storage.Checksum{})
	wantErr(t, "FinishAt of an old TID", err, storage.ErrTIDOrder)
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after ErrTIDOrder: %v", err)
	}

	// A wrong expected chain: nothing committed, Abort works, and the
	// commit lock is free again.
	lastTID, prev = m.last()
	ws = []write{{4, 0, []byte("mismatch")}}
	wrong := chainAfter(prev, lastTID+5, meta1, ws)
	wrong[0] ^= 1
	txn = begin(t, s, meta1, ws...)
	vote(t, txn)
	_, err = txn.FinishAt(ctx, lastTID+5, wrong)
	wantErr(t, "FinishAt with a wrong chain", err, storage.ErrChainMismatch)
	m.check(t, s)
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort after ErrChainMismatch: %v", err)
	}
	m.check(t, s)
	expect = chainAfter(prev, lastTID+5, meta1, ws)
	commitAt(t, s, lastTID+5, expect, meta1, ws...)
	m.apply(lastTID+5, meta1, ws)
	m.check(t, s)
}

func testReplay(t *testing.T, h Harness) {
	src := h.Open(t)
	m := newModel()
	history(t, src, m, rand.New(rand.NewPCG(5, 6)), 40, 10)
	txns := iterate(t, src, 0, 0)

	// replay copies txns into a fresh store, changing the data of one
	// record of transaction tamper (-1: none), and returns the chains.
	replay := func(tamper int) []storage.Checksum {
		dst := h.Open(t)
		var chains []storage.Checksum
		for i, txn := range txns {
			ws := make([]write, len(txn.Records))
			for j, r := range txn.Records {
				_, serial, err := dst.Load(t.Context(), r.OID)
				if err != nil && !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("Load(%s): %v", r.OID, err)
				}
				ws[j] = write{r.OID, serial, r.Data}
			}
			expect := txn.Chain
			if i == tamper && len(ws) > 0 {
				ws[0].data = append(slices.Clone(ws[0].data), '!')
			}
			if tamper >= 0 {
				expect = storage.Checksum{}
			}
			c := commitAt(t, dst, txn.TID, expect, txn.Meta, ws...)
			chains = append(chains, c.Chain)
		}
		if tamper < 0 {
			m.check(t, dst)
		}
		return chains
	}

	same := replay(-1)
	for i, txn := range txns {
		if same[i] != txn.Chain {
			t.Fatalf("replayed transaction %s: chain %s; want %s", txn.TID, same[i], txn.Chain)
		}
	}
	tamper := len(txns) / 2
	for len(txns[tamper].Records) == 0 {
		tamper++
	}
	diverged := replay(tamper)
	for i, txn := range txns {
		if equal := diverged[i] == txn.Chain; equal != (i < tamper) {
			t.Fatalf("tampered at transaction %d: chain of transaction %d equal %v; want %v", tamper, i, equal, i < tamper)
		}
	}
}

func testConcurrentStorePhase(t *testing.T, h Harness) {
	s := h.Open(t)
	const writers, rounds = 8, 4
	ctx := guard(t)
	var stored, wg sync.WaitGroup
	start := make(chan struct{})
	tids := make([][]storage.TID, writers)
	stored.Add(writers)
	for g := range writers {
		wg.Go(func() {
			waiting := true
			defer func() {
				if waiting { // failed before reaching the barrier
					stored.Done()
				}
			}()
			for round := range rounds {
				txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte{byte(g)}})
				if err != nil {
					t.Errorf("writer %d: Begin: %v", g, err)
					return
				}
				for k := range 3 {
					oid := storage.OID(1000*(g+1) + 10*round + k)
					if err := txn.Store(ctx, oid, 0, []byte(oid.String())); err != nil {
						t.Errorf("writer %d: Store: %v", g, err)
						return
					}
				}
				if round == 0 {
					// Every writer is in the store phase at once.
					waiting = false
					stored.Done()
					<-start
				}
				if err := txn.Vote(ctx); err != nil {
					t.Errorf("writer %d: Vote: %v", g, err)
					return
				}
				c, err := txn.Finish(ctx)
				if err != nil {
					t.Errorf("writer %d: Finish: %v", g, err)
					return
				}
				tids[g] = append(tids[g], c.TID)
			}
		})
	}
	stored.Wait()
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := make(map[storage.TID]bool)
	for g, mine := range tids {
		if !slices.IsSorted(mine) {
			t.Errorf("writer %d got TIDs out of order: %v", g, mine)
		}
		for _, tid := range mine {
			if seen[tid] {
				t.Fatalf("TID %s returned twice", tid)
			}
			seen[tid] = true
		}
	}
	txns := iterate(t, s, 0, 0)
	if len(txns) != writers*rounds {
		t.Fatalf("iterator yields %d transactions; want %d", len(txns), writers*rounds)
	}
	for i, txn := range txns {
		if !seen[txn.TID] || (i > 0 && txn.TID <= txns[i-1].TID) {
			t.Fatalf("iterator transaction %d has TID %s: unknown or not increasing", i, txn.TID)
		}
		if len(txn.Records) != 3 {
			t.Fatalf("transaction %s has %d records; want 3", txn.TID, len(txn.Records))
		}
	}
}

func testCommitLock(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	a := begin(t, s, meta1, write{1, 0, []byte("a")})
	vote(t, a) // a holds the commit lock

	// b waits for the lock; events records that it got it only after a
	// finished.
	events := make(chan string, 2)
	bVoted := make(chan error, 1)
	b := begin(t, s, meta1, write{2, 0, []byte("b")})
	bctx := guard(t)
	go func() {
		err := b.Vote(bctx)
		events <- "b voted"
		bVoted <- err
	}()

	// c gives up waiting when its context is canceled.
	c := begin(t, s, meta1, write{3, 0, []byte("c")})
	cctx, cancel := context.WithCancel(guard(t))
	cVoted := make(chan error, 1)
	go func() { cVoted <- c.Vote(cctx) }()
	cancel()
	wantErr(t, "Vote canceled while another transaction holds the lock", <-cVoted, context.Canceled)
	_, err := c.Finish(ctx)
	wantErr(t, "Finish after a canceled Vote", err, storage.ErrTxnState)
	wantErr(t, "Store after a canceled Vote (the transaction is aborted)", c.Store(ctx, 3, 0, nil), storage.ErrTxnState)

	select {
	case err := <-bVoted:
		t.Fatalf("Vote returned (%v) while another transaction held the commit lock", err)
	default:
	}
	events <- "a finishing"
	ca := finish(t, a)
	if err := <-bVoted; err != nil {
		t.Fatalf("Vote after the lock was released: %v", err)
	}
	if first := <-events; first != "a finishing" {
		t.Fatalf("first event %q: Vote took the commit lock before its holder finished", first)
	}
	cb := finish(t, b)
	if cb.TID <= ca.TID {
		t.Fatalf("TIDs %s then %s", ca.TID, cb.TID)
	}
	wantNotFound(t, s, 3)

	// Abort releases the lock too.
	d := begin(t, s, meta1, write{4, 0, []byte("d")})
	vote(t, d)
	eVoted := make(chan error, 1)
	e := begin(t, s, meta1, write{5, 0, []byte("e")})
	ectx := guard(t)
	go func() { eVoted <- e.Vote(ectx) }()
	select {
	case err := <-eVoted:
		t.Fatalf("Vote returned (%v) while another transaction held the commit lock", err)
	default:
	}
	if err := d.Abort(ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := <-eVoted; err != nil {
		t.Fatalf("Vote after Abort released the lock: %v", err)
	}
	finish(t, e)
	wantNotFound(t, s, 4)
}

func testNewOID(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	used := make(map[storage.OID]bool)
	newOID := func() storage.OID {
		t.Helper()
		oid, err := s.NewOID(ctx)
		if err != nil {
			t.Fatalf("NewOID: %v", err)
		}
		if used[oid] {
			t.Fatalf("NewOID returned %s, already used", oid)
		}
		used[oid] = true
		return oid
	}
	for range 200 {
		newOID()
	}
	// Objects written by Finish and FinishAt right above the OIDs handed
	// out so far, and far above: NewOID must step over all of them.
	next := newOID()
	direct := []storage.OID{next + 1, next + 2, next + 5}
	ws := make([]write, len(direct))
	for i, oid := range direct {
		ws[i] = write{oid, 0, []byte("direct")}
		used[oid] = true
	}
	commit(t, s, meta1, ws...)
	restored := []storage.OID{next + 7, next + 8, 1 << 40}
	ws = ws[:0]
	for _, oid := range restored {
		ws = append(ws, write{oid, 0, []byte("restored")})
		used[oid] = true
	}
	commitAt(t, s, last(t, s)+1, storage.Checksum{}, meta1, ws...)
	for range 20 {
		newOID()
	}
}

func testObjectSizes(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	big := randBytes(rand.New(rand.NewPCG(7, 8)), 3<<20+7)
	ws := []write{{1, 0, nil}, {2, 0, []byte{}}, {3, 0, []byte{0}}, {4, 0, big}}
	c := commit(t, s, meta1, ws...)
	if want := m.apply(c.TID, meta1, ws); c.Chain != want {
		t.Fatalf("chain %s; want %s", c.Chain, want)
	}
	m.check(t, s)
	for _, oid := range []storage.OID{1, 2} {
		if data, _, err := s.Load(ctx, oid); err != nil || len(data) != 0 {
			t.Fatalf("Load of a 0-byte object = %d bytes, %v", len(data), err)
		}
	}
	ws = []write{{4, c.TID, big[:1<<20]}}
	c = commit(t, s, meta1, ws...)
	m.apply(c.TID, meta1, ws)
	m.check(t, s)
}

func testCopies(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	data := []byte("original")
	c := commit(t, s, meta1, write{1, 0, data})
	data[0] = 'X' // the transaction is finished: the slice is the caller's again
	check := func(what string) {
		t.Helper()
		if got, _, err := s.Load(ctx, 1); err != nil || string(got) != "original" {
			t.Fatalf("after changing %s: Load = %q, %v", what, got, err)
		}
	}
	check("the stored slice")
	got, _, _ := s.Load(ctx, 1)
	got[0] = 'X'
	check("a loaded slice")
	got, _, _, _ = s.LoadBefore(ctx, 1, c.TID+1)
	got[0] = 'X'
	check("a LoadBefore slice")
	hist, _ := s.History(ctx, 1, 0)
	hist[0].Data[0] = 'X'
	check("a History slice")
	txns := iterate(t, s, 0, 0)
	txns[0].Records[0].Data[0] = 'X'
	check("an iterator slice")
}

func testClosed(t *testing.T, h Harness) {
	s := h.Open(t)
	ctx := t.Context()
	c := commit(t, s, meta1, write{1, 0, []byte("x")})
	open := begin(t, s, meta1, write{2, 0, []byte("y")})
	voted := begin(t, s, meta1, write{3, 0, []byte("z")})
	vote(t, voted)
	// waiting blocks on the commit lock voted holds; Close wakes it.
	waiting := begin(t, s, meta1, write{4, 0, []byte("w")})
	waitErr := make(chan error, 1)
	wctx := guard(t)
	go func() { waitErr <- waiting.Vote(wctx) }()

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("second Close: %v; want nil or ErrClosed", err)
	}
	if err := <-waitErr; err == nil {
		t.Fatal("Vote waiting for the commit lock succeeded on a closed store")
	}
	_, _, err := s.Load(ctx, 1)
	wantErr(t, "Load", err, storage.ErrClosed)
	_, _, _, err = s.LoadBefore(ctx, 1, c.TID+1)
	wantErr(t, "LoadBefore", err, storage.ErrClosed)
	_, err = s.History(ctx, 1, 0)
	wantErr(t, "History", err, storage.ErrClosed)
	_, err = s.LastTransaction(ctx)
	wantErr(t, "LastTransaction", err, storage.ErrClosed)
	_, err = s.Chain(ctx, c.TID)
	wantErr(t, "Chain", err, storage.ErrClosed)
	_, err = s.NewOID(ctx)
	wantErr(t, "NewOID", err, storage.ErrClosed)
	_, err = s.Iterator(ctx, 0, 0)
	wantErr(t, "Iterator", err, storage.ErrClosed)
	wantErr(t, "Pack", s.Pack(ctx, c.TID), storage.ErrClosed)
	_, err = s.Begin(ctx, meta1)
	wantErr(t, "Begin", err, storage.ErrClosed)
	wantErr(t, "Store in an open transaction", open.Store(ctx, 5, 0, nil), storage.ErrClosed)
	wantErr(t, "Vote in an open transaction", open.Vote(guard(t)), storage.ErrClosed)
	_, err = voted.Finish(ctx)
	wantErr(t, "Finish of a voted transaction", err, storage.ErrClosed)
	_, err = voted.FinishAt(ctx, c.TID+1, storage.Checksum{})
	wantErr(t, "FinishAt of a voted transaction", err, storage.ErrClosed)
	for _, txn := range []storage.Txn{open, voted, waiting} {
		if err := txn.Abort(ctx); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("Abort after Close: %v; want nil or ErrClosed", err)
		}
	}
}

func testPersistence(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("Harness.Reopen is nil")
	}
	s := h.Open(t)
	ctx := t.Context()
	m := newModel()
	rng := rand.New(rand.NewPCG(9, 10))
	history(t, s, m, rng, 30, 8)
	before := m.txns[len(m.txns)/2].TID
	if err := s.Pack(ctx, before); err != nil {
		t.Fatalf("Pack: %v", err)
	}
	m.pack(before)
	history(t, s, m, rng, 10, 8)
	ws := []write{{500, 0, bytes.Repeat([]byte("big"), 1<<18)}, {501, 0, nil}}
	c := commit(t, s, meta1, ws...)
	m.apply(c.TID, meta1, ws)
	var handedOut []storage.OID
	for range 5 {
		oid, err := s.NewOID(ctx)
		if err != nil {
			t.Fatalf("NewOID: %v", err)
		}
		handedOut = append(handedOut, oid)
	}
	// Transactions open at Close leave no trace after reopen.
	open := begin(t, s, meta1, write{600, 0, []byte("open")})
	voted := begin(t, s, meta1, write{601, 0, []byte("voted")})
	vote(t, voted)
	_ = open

	s = h.Reopen(t, s)
	m.check(t, s)
	wantNotFound(t, s, 600)
	wantNotFound(t, s, 601)

	lastTID, _ := m.last()
	txn := begin(t, s, meta1, write{602, 0, []byte("x")})
	vote(t, txn)
	_, err := txn.FinishAt(ctx, lastTID, storage.Checksum{})
	wantErr(t, "FinishAt(last TID before reopen)", err, storage.ErrTIDOrder)
	if err := txn.Abort(ctx); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	ws = []write{{600, 0, []byte("after reopen")}}
	c = commit(t, s, meta1, ws...)
	if c.TID <= lastTID {
		t.Fatalf("first TID after reopen %s is not after the last before %s", c.TID, lastTID)
	}
	if want := m.apply(c.TID, meta1, ws); c.Chain != want {
		t.Fatalf("chain after reopen %s; want %s", c.Chain, want)
	}
	for range 5 {
		oid, err := s.NewOID(ctx)
		if err != nil {
			t.Fatalf("NewOID: %v", err)
		}
		if _, ok := m.revs[oid]; ok || slices.Contains(handedOut, oid) {
			t.Fatalf("NewOID after reopen returned %s, used before", oid)
		}
	}

	// Reopen a second time, right after a commit.
	s = h.Reopen(t, s)
	m.check(t, s)
}
