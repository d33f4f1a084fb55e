package storagetest

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/repld/repld/storage"
)

// stateAt is the model's answer to Objects(from, to, at): for each object,
// the revision LoadBefore(oid, at+1) reads.
func (m *model) stateAt(from, to storage.OID, at storage.TID) []storage.ObjectState {
	var out []storage.ObjectState
	for oid, revs := range m.revs {
		if oid < from || oid > to {
			continue
		}
		for i := len(revs) - 1; i >= 0; i-- {
			if revs[i].tid <= at {
				out = append(out, storage.ObjectState{OID: oid, Serial: revs[i].tid, Data: revs[i].data})
				break
			}
		}
	}
	slices.SortFunc(out, func(a, b storage.ObjectState) int {
		switch {
		case a.OID < b.OID:
			return -1
		case a.OID > b.OID:
			return 1
		}
		return 0
	})
	return out
}

// checkObjects compares Objects(from, to, at) with the model.
func (m *model) checkObjects(t *testing.T, l storage.ObjectLister, from, to storage.OID, at storage.TID) {
	t.Helper()
	want := m.stateAt(from, to, at)
	var got []storage.ObjectState
	for st, err := range l.Objects(t.Context(), from, to, at) {
		if err != nil {
			t.Fatalf("Objects(%s, %s, %s): %v", from, to, at, err)
		}
		// Data is valid only during the step.
		got = append(got, storage.ObjectState{OID: st.OID, Serial: st.Serial, Data: bytes.Clone(st.Data)})
	}
	if len(got) != len(want) {
		t.Fatalf("Objects(%s, %s, %s) yields %d objects; want %d", from, to, at, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.OID != w.OID || g.Serial != w.Serial || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("Objects(%s, %s, %s)[%d] = %s@%s %q; want %s@%s %q", from, to, at, i, g.OID, g.Serial, short(g.Data), w.OID, w.Serial, short(w.Data))
		}
	}
}

// listsObjects reports whether l lists objects, rather than passing on
// errors.ErrUnsupported from a store behind it (a view of a store that
// lacks the capability).
func listsObjects(t *testing.T, l storage.ObjectLister) bool {
	t.Helper()
	for _, err := range l.Objects(t.Context(), 0, 0, 0) {
		if errors.Is(err, errors.ErrUnsupported) {
			return false
		}
		if err != nil {
			t.Fatalf("Objects(0, 0, 0): %v", err)
		}
	}
	return true
}

// checkSeek compares TxnAtOrBefore and TxnAfter with the model around
// every transaction.
func (m *model) checkSeek(t *testing.T, k storage.TxnSeeker) {
	t.Helper()
	ctx := t.Context()
	probes := []storage.TID{0, 1, math.MaxUint64}
	for _, txn := range m.txns {
		probes = append(probes, txn.TID-1, txn.TID, txn.TID+1)
	}
	for _, p := range probes {
		var before, after storage.Transaction
		for _, txn := range m.txns {
			if txn.TID <= p {
				before = txn
			} else if after.TID == 0 {
				after = txn
			}
		}
		tid, chain, err := k.TxnAtOrBefore(ctx, p)
		if err != nil || tid != before.TID || chain != before.Chain {
			t.Fatalf("TxnAtOrBefore(%s) = %s, %s, %v; want %s, %s", p, tid, chain, err, before.TID, before.Chain)
		}
		tid, chain, err = k.TxnAfter(ctx, p)
		if after.TID == 0 {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("TxnAfter(%s) = %s, %v; want ErrNotFound", p, tid, err)
			}
			continue
		}
		if err != nil || tid != after.TID || chain != after.Chain {
			t.Fatalf("TxnAfter(%s) = %s, %s, %v; want %s, %s", p, tid, chain, err, after.TID, after.Chain)
		}
	}
}

// testObjects checks the optional capabilities storage.ObjectLister and
// storage.TxnSeeker against the model, before and after packs; it is
// skipped for stores that have neither.
func testObjects(t *testing.T, h Harness) {
	s := h.Open(t)
	l, isLister := s.(storage.ObjectLister)
	isLister = isLister && listsObjects(t, l)
	k, isSeeker := s.(storage.TxnSeeker)
	if !isLister && !isSeeker {
		t.Skipf("%T implements neither storage.ObjectLister nor storage.TxnSeeker", s)
	}
	ctx := t.Context()
	m := newModel()
	rng := rand.New(rand.NewPCG(21, 22))
	check := func() {
		t.Helper()
		if isSeeker {
			m.checkSeek(t, k)
		}
		if !isLister {
			return
		}
		last, _ := m.last()
		probes := []storage.TID{0, 1, last, last + 1, math.MaxUint64}
		for i := 0; i < len(m.txns); i += 7 {
			probes = append(probes, m.txns[i].TID-1, m.txns[i].TID)
		}
		for _, at := range probes {
			m.checkObjects(t, l, 0, math.MaxUint64, at)
		}
		for _, r := range [][2]storage.OID{{3, 3}, {2, 9}, {9, 2}, {5, math.MaxUint64}, {math.MaxUint64, math.MaxUint64}} {
			m.checkObjects(t, l, r[0], r[1], last)
		}
	}
	check() // empty
	history(t, s, m, rng, 50, 16)
	// The largest OID, and a gap: the range bounds are inclusive.
	ws := []write{{math.MaxUint64, 0, []byte("max")}, {1000, 0, nil}}
	c := commit(t, s, meta1, ws...)
	m.apply(c.TID, meta1, ws)
	history(t, s, m, rng, 20, 16)
	check()

	if isLister {
		// Stopping early is allowed and ends the iteration.
		n := 0
		for _, err := range l.Objects(ctx, 0, math.MaxUint64, c.TID) {
			if err != nil {
				t.Fatalf("Objects: %v", err)
			}
			if n++; n == 2 {
				break
			}
		}
		if n != 2 {
			t.Fatalf("Objects yielded %d objects before the break; want 2", n)
		}
	}

	mid := m.txns[len(m.txns)/2].TID
	if err := s.Pack(ctx, mid); err != nil {
		t.Fatalf("Pack(%s): %v", mid, err)
	}
	m.pack(mid)
	check()
	history(t, s, m, rng, 10, 16)
	check()
}
