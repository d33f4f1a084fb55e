package storagetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/repld/repld/storage"
)

// write is one Store call.
type write struct {
	oid    storage.OID
	serial storage.TID
	data   []byte
}

// modelRev is one revision in the model.
type modelRev struct {
	tid  storage.TID
	data []byte
}

// model is what a store must contain, kept by the test with plain maps and
// slices, independently of any implementation.
type model struct {
	revs map[storage.OID][]modelRev // ascending TID
	txns []storage.Transaction      // ascending TID, records in OID order
}

func newModel() *model { return &model{revs: make(map[storage.OID][]modelRev)} }

func (m *model) last() (storage.TID, storage.Checksum) {
	if len(m.txns) == 0 {
		return 0, storage.Checksum{}
	}
	l := m.txns[len(m.txns)-1]
	return l.TID, l.Chain
}

// serial is the current serial of oid (0: no such object).
func (m *model) serial(oid storage.OID) storage.TID {
	revs := m.revs[oid]
	if len(revs) == 0 {
		return 0
	}
	return revs[len(revs)-1].tid
}

// records turns writes into the records a transaction commits: a later
// write of an OID replaces an earlier one, and records are in OID order.
func records(ws []write) []storage.Record {
	byOID := make(map[storage.OID][]byte)
	for _, w := range ws {
		byOID[w.oid] = w.data
	}
	out := make([]storage.Record, 0, len(byOID))
	for _, oid := range slices.Sorted(maps.Keys(byOID)) {
		out = append(out, storage.Record{OID: oid, Data: bytes.Clone(byOID[oid])})
	}
	return out
}

// chainAfter is the chain of a transaction at tid committing ws after prev.
func chainAfter(prev storage.Checksum, tid storage.TID, meta storage.TxnMeta, ws []write) storage.Checksum {
	recs := records(ws)
	digests := make([]storage.RecordDigest, len(recs))
	for i, r := range recs {
		digests[i] = storage.DigestRecord(r.OID, r.Data)
	}
	return storage.NextChain(prev, tid, meta, digests)
}

// apply records a commit at tid in the model and returns the chain the
// store must have computed.
func (m *model) apply(tid storage.TID, meta storage.TxnMeta, ws []write) storage.Checksum {
	_, prev := m.last()
	chain := chainAfter(prev, tid, meta, ws)
	recs := records(ws)
	for _, r := range recs {
		m.revs[r.OID] = append(m.revs[r.OID], modelRev{tid: tid, data: r.Data})
	}
	m.txns = append(m.txns, storage.Transaction{TID: tid, Meta: meta, Chain: chain, Records: recs})
	return chain
}

// pack applies Pack(before) to the model.
func (m *model) pack(before storage.TID) {
	removed := make(map[storage.TID]map[storage.OID]bool)
	for oid, revs := range m.revs {
		keep := -1
		for i, r := range revs {
			if r.tid <= before {
				keep = i
			}
		}
		for _, r := range revs[:max(keep, 0)] {
			if removed[r.tid] == nil {
				removed[r.tid] = make(map[storage.OID]bool)
			}
			removed[r.tid][oid] = true
		}
		if keep > 0 {
			m.revs[oid] = revs[keep:]
		}
	}
	for i, txn := range m.txns {
		if gone := removed[txn.TID]; gone != nil {
			m.txns[i].Records = slices.DeleteFunc(slices.Clone(txn.Records), func(r storage.Record) bool { return gone[r.OID] })
		}
	}
}

// loadBefore is LoadBefore answered by the model; ok is false for
// ErrNotFound.
func (m *model) loadBefore(oid storage.OID, before storage.TID) (data []byte, start, end storage.TID, ok bool) {
	revs := m.revs[oid]
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].tid < before {
			if i+1 < len(revs) {
				end = revs[i+1].tid
			}
			return revs[i].data, revs[i].tid, end, true
		}
	}
	return nil, 0, 0, false
}

// check compares every read of s with the model: LastTransaction, Chain of
// every TID, Load, History, LoadBefore at and just after every TID, and the
// full iterator.
func (m *model) check(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := t.Context()
	last, lastChain := m.last()
	if got, err := s.LastTransaction(ctx); err != nil || got != last {
		t.Fatalf("LastTransaction() = %s, %v; want %s", got, err, last)
	}
	if got, err := s.Chain(ctx, last); err != nil || got != lastChain {
		t.Fatalf("Chain(%s) = %s, %v; want %s", last, got, err, lastChain)
	}
	probes := []storage.TID{0, 1, math.MaxUint64}
	for _, txn := range m.txns {
		if got, err := s.Chain(ctx, txn.TID); err != nil || got != txn.Chain {
			t.Fatalf("Chain(%s) = %s, %v; want %s", txn.TID, got, err, txn.Chain)
		}
		probes = append(probes, txn.TID, txn.TID+1)
	}
	for _, oid := range slices.Sorted(maps.Keys(m.revs)) {
		revs := m.revs[oid]
		cur := revs[len(revs)-1]
		data, serial, err := s.Load(ctx, oid)
		if err != nil || serial != cur.tid || !bytes.Equal(data, cur.data) {
			t.Fatalf("Load(%s) = %q, %s, %v; want %q, %s", oid, short(data), serial, err, short(cur.data), cur.tid)
		}
		hist, err := s.History(ctx, oid, 0)
		if err != nil {
			t.Fatalf("History(%s, 0): %v", oid, err)
		}
		if len(hist) != len(revs) {
			t.Fatalf("History(%s, 0) has %d revisions; want %d", oid, len(hist), len(revs))
		}
		for i, h := range hist {
			want := revs[len(revs)-1-i]
			if h.TID != want.tid || !bytes.Equal(h.Data, want.data) {
				t.Fatalf("History(%s, 0)[%d] = %s %q; want %s %q", oid, i, h.TID, short(h.Data), want.tid, short(want.data))
			}
		}
		if hist, err := s.History(ctx, oid, 1); err != nil || len(hist) != 1 || hist[0].TID != cur.tid {
			t.Fatalf("History(%s, 1) = %v, %v; want the revision %s", oid, hist, err, cur.tid)
		}
		for _, before := range probes {
			wantData, wantStart, wantEnd, ok := m.loadBefore(oid, before)
			data, start, end, err := s.LoadBefore(ctx, oid, before)
			if !ok {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("LoadBefore(%s, %s) = %s..%s, %v; want ErrNotFound", oid, before, start, end, err)
				}
				continue
			}
			if err != nil || start != wantStart || end != wantEnd || !bytes.Equal(data, wantData) {
				t.Fatalf("LoadBefore(%s, %s) = %q, %s, %s, %v; want %q, %s, %s", oid, before, short(data), start, end, err, short(wantData), wantStart, wantEnd)
			}
		}
	}
	absent := storage.OID(1) << 62
	if _, _, err := s.Load(ctx, absent); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(%s) of an object never written: %v; want ErrNotFound", absent, err)
	}
	m.checkIterator(t, s, 0, 0)
}

// checkIterator compares Iterator(from, to) with the model.
func (m *model) checkIterator(t *testing.T, s storage.Storage, from, to storage.TID) {
	t.Helper()
	var want []storage.Transaction
	for _, txn := range m.txns {
		if txn.TID >= from && (to == 0 || txn.TID <= to) {
			want = append(want, txn)
		}
	}
	got := iterate(t, s, from, to)
	if len(got) != len(want) {
		t.Fatalf("Iterator(%s, %s) yields %d transactions; want %d", from, to, len(got), len(want))
	}
	for i := range want {
		if err := sameTransaction(got[i], want[i]); err != "" {
			t.Fatalf("Iterator(%s, %s), transaction %d: %s", from, to, i, err)
		}
	}
}

// sameTransaction describes how got differs from want, or returns "".
func sameTransaction(got, want storage.Transaction) string {
	switch {
	case got.TID != want.TID:
		return "TID " + got.TID.String() + ", want " + want.TID.String()
	case got.Chain != want.Chain:
		return "chain " + got.Chain.String() + ", want " + want.Chain.String()
	case !bytes.Equal(got.Meta.User, want.Meta.User),
		!bytes.Equal(got.Meta.Description, want.Meta.Description),
		!bytes.Equal(got.Meta.Extension, want.Meta.Extension):
		return "metadata differs at " + want.TID.String()
	case len(got.Records) != len(want.Records):
		return "different number of records at " + want.TID.String()
	}
	for i, r := range want.Records {
		if got.Records[i].OID != r.OID || !bytes.Equal(got.Records[i].Data, r.Data) {
			return "record " + got.Records[i].OID.String() + " differs from " + r.OID.String() + " at " + want.TID.String()
		}
	}
	return ""
}

// iterate collects Iterator(from, to), bounded by the number of
// transactions a suite ever commits.
func iterate(t *testing.T, s storage.Storage, from, to storage.TID) []storage.Transaction {
	t.Helper()
	ctx := t.Context()
	it, err := s.Iterator(ctx, from, to)
	if err != nil {
		t.Fatalf("Iterator(%s, %s): %v", from, to, err)
	}
	defer it.Close()
	var out []storage.Transaction
	for range maxTransactions {
		txn, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Iterator(%s, %s).Next: %v", from, to, err)
		}
		out = append(out, *txn)
	}
	t.Fatalf("Iterator(%s, %s) yields more than %d transactions", from, to, maxTransactions)
	return nil
}

// maxTransactions bounds every loop over an iterator: no store the suite
// fills holds that many transactions.
const maxTransactions = 10000

// short keeps failure messages readable for large objects.
func short(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// history commits n random transactions to s over oids objects, with some
// conflicts and aborts along the way, and records the commits in m.
func history(t *testing.T, s storage.Storage, m *model, rng *rand.Rand, n, oids int) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		meta := storage.TxnMeta{User: []byte("user"), Description: []byte{byte('a' + i%26)}}
		if rng.IntN(3) == 0 {
			meta.Extension = randBytes(rng, 8)
		}
		var ws []write
		for range 1 + rng.IntN(4) {
			oid := storage.OID(rng.IntN(oids))
			data := append([]byte(oid.String()+"@"), randBytes(rng, rng.IntN(40))...)
			ws = append(ws, write{oid: oid, serial: m.serial(oid), data: data})
		}
		switch rng.IntN(20) {
		case 0: // a stale serial: Vote reports a conflict, nothing is committed
			w := &ws[len(ws)-1] // the last Store of an OID is the one that counts
			w.serial = m.serial(w.oid) + 1
			txn := begin(t, s, meta, ws...)
			var cerr *storage.ConflictError
			err := txn.Vote(guard(t))
			if !errors.As(err, &cerr) || cerr.OID != w.oid || cerr.Expected != w.serial || cerr.Actual != m.serial(w.oid) {
				t.Fatalf("Vote with stale serial %s for %s: %v; want ConflictError{%s, %s, %s}", w.serial, w.oid, err, w.oid, w.serial, m.serial(w.oid))
			}
			continue
		case 1: // aborted in the store phase
			if err := begin(t, s, meta, ws...).Abort(ctx); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			continue
		case 2: // aborted after Vote
			txn := begin(t, s, meta, ws...)
			vote(t, txn)
			if err := txn.Abort(ctx); err != nil {
				t.Fatalf("Abort after Vote: %v", err)
			}
			continue
		}
		c := commit(t, s, meta, ws...)
		last, _ := m.last()
		if c.TID <= last {
			t.Fatalf("commit %d got TID %s, not after the last one %s", i, c.TID, last)
		}
		if want := m.apply(c.TID, meta, ws); c.Chain != want {
			t.Fatalf("commit %d at %s: chain %s, want %s", i, c.TID, c.Chain, want)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
	}
	return b[:n:n]
}

// guard returns a context that ends long after any correct call returns, so
// that a deadlock fails the test instead of hanging it.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), guardTimeout)
	t.Cleanup(cancel)
	return ctx
}
