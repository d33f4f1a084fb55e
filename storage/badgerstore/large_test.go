package badgerstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/repld/repld/storage"
)

// pattern returns n deterministic bytes that differ per (seed, i): a
// pseudo-random block of up to 4 KiB, repeated.
func pattern(seed uint64, i, n int) []byte {
	b := make([]byte, n)
	x := seed*0x9e3779b97f4a7c15 + uint64(i)*0xbf58476d1ce4e5b9 + 1
	var w [8]byte
	block := min(n, 4096)
	for j := 0; j < block; j += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(w[:], x)
		copy(b[j:block], w[:])
	}
	for filled := block; filled < n; filled *= 2 {
		copy(b[filled:], b[:filled])
	}
	return b
}

// commitObjects commits one transaction of new objects with the given
// sizes and returns their OIDs.
func commitObjects(t *testing.T, s *Store, seed uint64, sizes []int) (storage.Commit, []storage.OID) {
	t.Helper()
	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{Description: fmt.Appendf(nil, "seed %d", seed)})
	if err != nil {
		t.Fatal(err)
	}
	oids := make([]storage.OID, len(sizes))
	for i, n := range sizes {
		if oids[i], err = s.NewOID(ctx); err != nil {
			t.Fatal(err)
		}
		if err := txn.Store(ctx, oids[i], 0, pattern(seed, i, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatalf("Vote: %v", err)
	}
	c, err := txn.Finish(ctx)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return c, oids
}

// checkObjects loads every object and compares it with its pattern.
func checkObjects(t *testing.T, s *Store, seed uint64, tid storage.TID, oids []storage.OID, sizes []int) {
	t.Helper()
	for i, oid := range oids {
		data, serial, err := s.Load(t.Context(), oid)
		if err != nil {
			t.Fatalf("Load %s: %v", oid, err)
		}
		if serial != tid || !bytes.Equal(data, pattern(seed, i, sizes[i])) {
			t.Fatalf("Load %s: serial %s, %d bytes; want %s, %d bytes of pattern %d/%d", oid, serial, len(data), tid, sizes[i], seed, i)
		}
	}
}

// checkChains recomputes every chain value from the iterator and
// compares it with the stored one; it returns the transactions seen.
func checkChains(t *testing.T, s storage.Storage) []*storage.Transaction {
	t.Helper()
	ctx := t.Context()
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var (
		prev storage.Checksum
		all  []*storage.Transaction
	)
	for range 1_000_000 {
		tx, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		digests := make([]storage.RecordDigest, len(tx.Records))
		for i, r := range tx.Records {
			digests[i] = storage.DigestRecord(r.OID, r.Data)
		}
		if want := storage.NextChain(prev, tx.TID, tx.Meta, digests); tx.Chain != want {
			t.Fatalf("transaction %s: stored chain %s, recomputed %s", tx.TID, tx.Chain, want)
		}
		prev = tx.Chain
		all = append(all, tx)
	}
	t.Fatal("iterator did not end")
	return nil
}

// liveKeys counts the keys with prefix visible at the newest version.
func liveKeys(t *testing.T, s *Store, prefix byte) int {
	t.Helper()
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n
}

func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return openStore(t, s.cfg)
}

func repeat(n, size int) []int {
	sizes := make([]int, n)
	for i := range sizes {
		sizes[i] = size
	}
	return sizes
}

// A 300 MiB transaction in 100 KiB objects and a single 64 MiB object
// commit whole and read back whole, before and after a restart; a large
// transaction aborted after Vote leaves nothing.
func TestLargeTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("writes about 1 GiB")
	}
	t.Parallel() // mostly waits for the disk
	cfg := testConfig(t, t.TempDir())
	cfg.MemTableSize = 64 << 20
	cfg.ValueThreshold = 64 << 10
	s := openStore(t, cfg)

	bigSizes := repeat(3072, 100<<10)
	c1, oids1 := commitObjects(t, s, 1, bigSizes)
	checkObjects(t, s, 1, c1.TID, oids1, bigSizes)

	hugeSizes := []int{64 << 20}
	c2, oids2 := commitObjects(t, s, 2, hugeSizes)
	checkObjects(t, s, 2, c2.TID, oids2, hugeSizes)

	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	var aborted []storage.OID
	for i := range 128 {
		oid, err := s.NewOID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		aborted = append(aborted, oid)
		if err := txn.Store(ctx, oid, 0, pattern(3, i, 100<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	for _, oid := range aborted {
		if _, _, err := s.Load(ctx, oid); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Load %s of the aborted transaction: %v, want ErrNotFound", oid, err)
		}
	}
	if last, _ := s.LastTransaction(ctx); last != c2.TID {
		t.Fatalf("LastTransaction %s, want %s", last, c2.TID)
	}
	if n := liveKeys(t, s, prefixStage); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
	// After the restart, the iterator reads everything back and the
	// recomputed chains cover every byte.
	if txns := checkChains(t, s); len(txns) != 2 || len(txns[0].Records) != len(oids1) || len(txns[1].Records) != 1 {
		t.Fatalf("iterator: %d transactions, want 2 with %d and 1 records", len(txns), len(oids1))
	}
}

// A transaction with more objects than one badger transaction holds
// takes the staged path and commits whole, also with NoSync (where only
// the count forces staging).
func TestManyObjects(t *testing.T) {
	for _, noSync := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoSync=%v", noSync), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.NoSync = noSync
			s := openStore(t, cfg)
			sizes := repeat(int(s.maxCount), 20)
			c, oids := commitObjects(t, s, 4, sizes)
			checkObjects(t, s, 4, c.TID, oids, sizes)
			if n := liveKeys(t, s, prefixStage); n != 0 {
				t.Fatalf("%d staging keys left", n)
			}
			s = reopen(t, s)
			checkObjects(t, s, 4, c.TID, oids, sizes)
			if txns := checkChains(t, s); len(txns) != 1 || len(txns[0].Records) != len(sizes) {
				t.Fatalf("iterator: %d transactions, want 1 with %d records", len(txns), len(sizes))
			}
		})
	}
}

// stagedTxn begins, fills and votes a transaction that takes the staged
// path.
func stagedTxn(t *testing.T, s *Store, seed uint64, n int) (*txn, []storage.OID) {
	t.Helper()
	ctx := t.Context()
	st, err := s.Begin(ctx, storage.TxnMeta{User: []byte("u"), Description: []byte("staged")})
	if err != nil {
		t.Fatal(err)
	}
	oids := make([]storage.OID, n)
	for i := range oids {
		oids[i] = storage.OID(1000 + i)
		if err := st.Store(ctx, oids[i], 0, pattern(seed, i, 8<<10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	tx := st.(*txn)
	if !tx.staged {
		t.Fatal("transaction did not take the staged path")
	}
	return tx, oids
}

// A crash after the commit point of a staged transaction, with part of it
// applied, is finished by Open.
func TestRedoAfterCommitPoint(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	c0, _ := commitObjects(t, s, 5, []int{10})
	tx, oids := stagedTxn(t, s, 6, 64)

	// What Finish does, up to the middle of apply, then a crash.
	tid := c0.TID + 1
	digests := make([]storage.RecordDigest, len(oids))
	for i, oid := range oids {
		digests[i] = tx.recs[oid].digest
	}
	chain := storage.NextChain(c0.Chain, tid, tx.meta, digests)
	w := s.newChunkWriter(uint64(tid))
	if err := w.set(intentKey(tid), encodeIntent(tx.nonce, chain)); err != nil {
		t.Fatal(err)
	}
	for _, oid := range oids[:10] {
		if err := w.set(objectKey(oid), tx.recs[oid].data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}

	s = reopen(t, s)
	sizes := repeat(len(oids), 8<<10)
	checkObjects(t, s, 6, tid, oids, sizes)
	if got, err := s.Chain(t.Context(), tid); err != nil || got != chain {
		t.Fatalf("Chain(%s) = %s, %v; want %s", tid, got, err, chain)
	}
	if n := liveKeys(t, s, prefixStage) + liveKeys(t, s, prefixIntent); n != 0 {
		t.Fatalf("%d staging and intent keys left", n)
	}
	checkChains(t, s)
	// TIDs continue after the finished transaction.
	c2, _ := commitObjects(t, s, 7, []int{10})
	if c2.TID <= tid {
		t.Fatalf("next TID %s not after %s", c2.TID, tid)
	}
}

// Staged data of a transaction that never reached its commit point is
// discarded by Open.
func TestDiscardStaged(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	_, oids := stagedTxn(t, s, 8, 64)
	if n := liveKeys(t, s, prefixStage); n != len(oids)+1 {
		t.Fatalf("%d staging keys, want %d", n, len(oids)+1)
	}
	s = reopen(t, s) // Close aborts the voted transaction
	if n := liveKeys(t, s, prefixStage); n != 0 {
		t.Fatalf("%d staging keys left", n)
	}
	for _, oid := range oids {
		if _, _, err := s.Load(t.Context(), oid); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Load %s: %v, want ErrNotFound", oid, err)
		}
	}
	if last, _ := s.LastTransaction(t.Context()); last != 0 {
		t.Fatalf("LastTransaction %s, want 0", last)
	}
}

// Reads after Pack do not depend on whether compaction has dropped the
// packed revisions yet.
func TestPackCompaction(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testConfig(t, t.TempDir()))
	oid := storage.OID(1)
	var tids []storage.TID
	var serial storage.TID
	for i := range 6 {
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Store(ctx, oid, serial, pattern(9, i, 100)); err != nil {
			t.Fatal(err)
		}
		c := commitTxn(t, txn)
		serial = c.TID
		tids = append(tids, c.TID)
	}
	if err := s.Pack(ctx, tids[3]); err != nil {
		t.Fatal(err)
	}
	snapshot := func(s *Store) string {
		var b bytes.Buffer
		revs, err := s.History(ctx, oid, 0)
		fmt.Fprintf(&b, "history %d %v\n", len(revs), err)
		for _, tid := range tids {
			_, start, end, err := s.LoadBefore(ctx, oid, tid+1)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "before %s: %s %s %v\n", tid+1, start, end, err)
		}
		it, err := s.Iterator(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		for range tids {
			tx, err := it.Next(ctx) // the transactions that wrote oid
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "txn %s: %d records\n", tx.TID, len(tx.Records))
		}
		return b.String()
	}
	before := snapshot(s)
	if want := "history 3 <nil>"; !strings.HasPrefix(before, want) {
		t.Fatalf("after Pack:\n%s\nwant it to start with %q", before, want)
	}
	// Each reopen flushes the memtable into a level 0 table; enough of them
	// make level 0 worth compacting.
	for i := range 6 {
		commitObjects(t, s, uint64(10+i), []int{10})
		s = reopen(t, s)
	}
	if err := s.db.Flatten(2); err != nil {
		t.Fatal(err)
	}
	if n := countVersions(t, s, objectKey(oid)); n != 3 {
		t.Fatalf("%d versions left after compaction, want 3", n)
	}
	if after := snapshot(s); after != before {
		t.Fatalf("after compaction:\n%s\nbefore:\n%s", after, before)
	}
}

// countVersions counts the badger versions of k, packed or not.
func countVersions(t *testing.T, s *Store, k []byte) int {
	t.Helper()
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	it := rtxn.NewKeyIterator(k, badger.IteratorOptions{AllVersions: true})
	defer it.Close()
	n := 0
	for it.Seek(k); it.Valid(); it.Next() {
		n++
	}
	return n
}
