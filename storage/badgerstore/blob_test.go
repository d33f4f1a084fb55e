package badgerstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/repld/repld/storage"
)

// blobConfig is testConfig with objects of at least 1 KiB in blob files.
func blobConfig(t testing.TB, dir string) Config {
	cfg := testConfig(t, dir)
	cfg.BlobThreshold = 1 << 10
	return cfg
}

// blobFiles lists the names in the blob directory, sorted.
func blobFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func wantBlobFiles(t *testing.T, s *Store, n int) []string {
	t.Helper()
	names := blobFiles(t, s)
	if len(names) != n {
		t.Fatalf("%d blob files %v, want %d", len(names), names, n)
	}
	if keys := liveKeys(t, s, prefixBlob); keys > n {
		t.Fatalf("%d blob index keys for %d files", keys, n)
	}
	return names
}

// storeObjects begins a transaction and stores new objects with the given
// sizes at OIDs from first.
func storeObjects(t *testing.T, s *Store, seed uint64, first storage.OID, sizes []int) storage.Txn {
	t.Helper()
	txn, err := s.Begin(t.Context(), storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		if err := txn.Store(t.Context(), first+storage.OID(i), 0, pattern(seed, i, n)); err != nil {
			t.Fatal(err)
		}
	}
	return txn
}

// Large objects land in blob files, one per revision, and commit in one
// badger batch (no staging); small ones stay in badger.
func TestBlobCommit(t *testing.T) {
	s := openStore(t, blobConfig(t, t.TempDir()))
	sizes := []int{10, 1 << 10, 300 << 10, 1<<10 - 1}
	tx := storeObjects(t, s, 1, 1, sizes)
	wantBlobFiles(t, s, 2) // written by Store, before the vote
	if err := tx.Vote(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tx.(*txn).staged {
		t.Fatal("a transaction whose large values are blob files was staged")
	}
	c, err := tx.Finish(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	oids := []storage.OID{1, 2, 3, 4}
	checkObjects(t, s, 1, c.TID, oids, sizes)
	if n := liveKeys(t, s, prefixBlob); n != 2 {
		t.Fatalf("%d blob index keys, want 2", n)
	}
	s = reopen(t, s)
	wantBlobFiles(t, s, 2)
	checkObjects(t, s, 1, c.TID, oids, sizes)
	txns := checkChains(t, s)
	if len(txns) != 1 || len(txns[0].Records) != 4 || !bytes.Equal(txns[0].Records[2].Data, pattern(1, 2, 300<<10)) {
		t.Fatalf("iterator: %d transactions", len(txns))
	}
	n := 0
	for st, err := range s.Objects(t.Context(), 0, 10, c.TID) {
		if err != nil {
			t.Fatal(err)
		}
		if want := pattern(1, int(st.OID-1), sizes[st.OID-1]); !bytes.Equal(st.Data, want) {
			t.Fatalf("Objects: %s has %d bytes, want %d", st.OID, len(st.Data), len(want))
		}
		n++
	}
	if n != 4 {
		t.Fatalf("Objects listed %d objects, want 4", n)
	}
}

// Abort, a failed vote and storing an OID again remove the files that
// will not be committed.
func TestBlobAbort(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))

	txn := storeObjects(t, s, 1, 1, []int{4 << 10, 8 << 10})
	wantBlobFiles(t, s, 2)
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	wantBlobFiles(t, s, 0)

	txn = storeObjects(t, s, 1, 1, []int{4 << 10})
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	wantBlobFiles(t, s, 0)

	// Storing OID 1 again replaces the file (large again) or drops it
	// (small now).
	txn = storeObjects(t, s, 1, 1, []int{4 << 10, 4 << 10})
	for i, n := range []int{5 << 10, 10} {
		if err := txn.Store(ctx, storage.OID(i+1), 0, pattern(2, i, n)); err != nil {
			t.Fatal(err)
		}
	}
	wantBlobFiles(t, s, 1)
	c := commitTxn(t, txn)
	checkObjects(t, s, 2, c.TID, []storage.OID{1, 2}, []int{5 << 10, 10})
	wantBlobFiles(t, s, 1)

	// A conflict at vote removes the files too.
	txn = storeObjects(t, s, 3, 1, []int{4 << 10})
	if err := txn.Vote(ctx); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Vote: %v, want a conflict", err)
	}
	wantBlobFiles(t, s, 1)
	s = reopen(t, s)
	wantBlobFiles(t, s, 1)
	checkObjects(t, s, 2, c.TID, []storage.OID{1, 2}, []int{5 << 10, 10})
}

// Open removes blob files no committed revision refers to: those of
// transactions open at a crash (here: at Close) and leftovers of any
// other name.
func TestBlobOrphansRemovedAtOpen(t *testing.T) {
	s := openStore(t, blobConfig(t, t.TempDir()))
	c, oids := commitObjects(t, s, 1, []int{2 << 10, 3 << 10})
	storeObjects(t, s, 2, 100, []int{4 << 10, 5 << 10}) // never voted
	voted := storeObjects(t, s, 3, 200, []int{4 << 10})
	if err := voted.Vote(t.Context()); err != nil { // voted, never finished
		t.Fatal(err)
	}
	committed := blobFiles(t, s)
	if len(committed) != 5 {
		t.Fatalf("%d blob files, want 5", len(committed))
	}
	for _, name := range []string{"0123456789abcdef.blob", "leftover.tmp"} {
		if err := os.WriteFile(filepath.Join(s.blobDir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = reopen(t, s)
	names := wantBlobFiles(t, s, 2)
	if n := liveKeys(t, s, prefixBlob); n != 2 {
		t.Fatalf("%d blob index keys, want 2", n)
	}
	for _, name := range names {
		if !slices.Contains(committed, name) {
			t.Fatalf("blob file %s kept, not one of the committed transaction's", name)
		}
	}
	checkObjects(t, s, 1, c.TID, oids, []int{2 << 10, 3 << 10})
}

// Pack removes the files of the revisions it packs, keeps those still
// readable, and reads stay correct.
func TestBlobPack(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))
	var tids []storage.TID
	var serial storage.TID
	for i := range 4 {
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Store(ctx, 1, serial, pattern(5, i, 2<<10)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := txn.Store(ctx, 2, 0, pattern(6, 0, 2<<10)); err != nil {
				t.Fatal(err)
			}
		}
		c := commitTxn(t, txn)
		serial = c.TID
		tids = append(tids, c.TID)
	}
	wantBlobFiles(t, s, 5)
	if err := s.Pack(ctx, tids[2]); err != nil {
		t.Fatal(err)
	}
	// Packed: OID 1 at tids[0] and tids[1]; kept: OID 1 at tids[2] and
	// tids[3], OID 2 at tids[0] (still current).
	wantBlobFiles(t, s, 3)
	check := func(s *Store) {
		t.Helper()
		revs, err := s.History(ctx, 1, 0)
		if err != nil || len(revs) != 2 || revs[1].TID != tids[2] || !bytes.Equal(revs[1].Data, pattern(5, 2, 2<<10)) {
			t.Fatalf("History after Pack: %d revisions, %v", len(revs), err)
		}
		if _, _, _, err := s.LoadBefore(ctx, 1, tids[2]); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("LoadBefore a packed revision: %v, want ErrNotFound", err)
		}
		if data, _, err := s.Load(ctx, 2); err != nil || !bytes.Equal(data, pattern(6, 0, 2<<10)) {
			t.Fatalf("Load of an object whose only revision is before the horizon: %d bytes, %v", len(data), err)
		}
		txns := checkChainsPacked(t, s)
		if len(txns) != 4 || len(txns[0].Records) != 1 || len(txns[1].Records) != 0 || len(txns[2].Records) != 1 {
			t.Fatalf("iterator after Pack: %d transactions", len(txns))
		}
	}
	check(s)
	s = reopen(t, s)
	wantBlobFiles(t, s, 3)
	check(s)
}

// checkChainsPacked iterates over every transaction (chains cannot be
// recomputed after Pack dropped records).
func checkChainsPacked(t *testing.T, s *Store) []*storage.Transaction {
	t.Helper()
	it, err := s.Iterator(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var all []*storage.Transaction
	for {
		tx, err := it.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tx)
	}
}

// A missing, truncated, longer or different blob file is ErrCorrupt on
// every read path, naming the OID, the TID and the file.
func TestBlobCorrupt(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))
	c, oids := commitObjects(t, s, 1, []int{4 << 10})
	oid := oids[0]
	path := filepath.Join(s.blobDir, blobFiles(t, s)[0])
	good := pattern(1, 0, 4<<10)
	different := bytes.Clone(good)
	different[100] ^= 1
	for _, tc := range []struct {
		name    string
		damage  func() error
		message string
	}{
		{"missing", func() error { return os.Remove(path) }, "missing"},
		{"truncated", func() error { return os.WriteFile(path, good[:100], 0o600) }, "100 bytes, want 4096"},
		{"longer", func() error { return os.WriteFile(path, append(bytes.Clone(good), 0), 0o600) }, "4097 bytes, want 4096"},
		{"different", func() error { return os.WriteFile(path, different, 0o600) }, "SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.damage(); err != nil {
				t.Fatal(err)
			}
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: %v, want ErrCorrupt", what, err)
				}
				for _, want := range []string{oid.String(), c.TID.String(), path, tc.message} {
					if !strings.Contains(err.Error(), want) {
						t.Fatalf("%s: %q does not name %q", what, err, want)
					}
				}
			}
			_, _, err := s.Load(ctx, oid)
			check("Load", err)
			_, _, _, err = s.LoadBefore(ctx, oid, c.TID+1)
			check("LoadBefore", err)
			_, err = s.History(ctx, oid, 0)
			check("History", err)
			it, err := s.Iterator(ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = it.Next(ctx)
			it.Close()
			check("Iterator", err)
			for _, err = range s.Objects(ctx, 0, oid, c.TID) {
				check("Objects", err)
			}
			if err := os.WriteFile(path, good, 0o600); err != nil {
				t.Fatal(err)
			}
			if data, _, err := s.Load(ctx, oid); err != nil || !bytes.Equal(data, good) {
				t.Fatalf("Load after the repair: %d bytes, %v", len(data), err)
			}
		})
	}
}

// A transaction with more objects than one badger transaction holds and
// blob files takes the staged path; a crash after its commit point keeps
// its files, as redo writes their index keys.
func TestBlobStaged(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))
	c0, _ := commitObjects(t, s, 1, []int{10})
	sizes := append(repeat(int(s.maxCount), 20), 4<<10, 5<<10)
	st := storeObjects(t, s, 2, 1000, sizes)
	if err := st.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	tx := st.(*txn)
	if !tx.staged {
		t.Fatal("transaction did not take the staged path")
	}
	// What Finish does, up to its commit point, then a crash.
	tid := c0.TID + 1
	digests := make([]storage.RecordDigest, len(tx.oids))
	for i, oid := range tx.oids {
		digests[i] = tx.recs[oid].digest
	}
	chain := storage.NextChain(c0.Chain, tid, tx.meta, digests)
	w := s.newChunkWriter(uint64(tid))
	if err := w.set(intentKey(tid), encodeIntent(tx.nonce, chain)); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	// Close aborts the voted transaction, but Abort leaves the files to
	// the next Open after Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, s.cfg)
	wantBlobFiles(t, s, 2)
	oids := make([]storage.OID, len(sizes))
	for i := range oids {
		oids[i] = 1000 + storage.OID(i)
	}
	checkObjects(t, s, 2, tid, oids, sizes)
	checkChains(t, s)

	// Committed normally, too.
	st = storeObjects(t, s, 3, 100000, sizes)
	if err := st.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := st.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantBlobFiles(t, s, 4)
	for i := range oids {
		oids[i] = 100000 + storage.OID(i)
	}
	checkObjects(t, s, 3, c.TID, oids, sizes)
}

// Restore writes large records to blob files, once, in both its paths:
// batched and one by one.
func TestRestoreBlobs(t *testing.T) {
	ctx := t.Context()
	txns := sourceHistory(t)
	s := openStore(t, blobConfig(t, t.TempDir()))
	// sourceHistory's 8 KiB object is a blob here, so its transaction
	// is batched; a transaction of more objects than one badger
	// transaction holds, with a blob, goes one by one.
	big := storage.Transaction{TID: txns[len(txns)-1].TID + 1, Meta: storage.TxnMeta{Description: []byte("big")}}
	var digests []storage.RecordDigest
	for i := range int(s.maxCount) {
		n := 20
		if i == 0 {
			n = 64 << 10
		}
		r := storage.Record{OID: storage.OID(100 + i), Data: pattern(7, i, n)}
		big.Records = append(big.Records, r)
		digests = append(digests, storage.DigestRecord(r.OID, r.Data))
	}
	big.Chain = storage.NextChain(txns[len(txns)-1].Chain, big.TID, big.Meta, digests)
	txns = append(txns, big)

	n, err := s.Restore(ctx, txns)
	if err != nil || n != len(txns) {
		t.Fatalf("Restore: %d, %v", n, err)
	}
	wantBlobFiles(t, s, 2)
	s = reopen(t, s)
	wantBlobFiles(t, s, 2)
	if data, _, _, err := s.LoadBefore(ctx, 3, big.TID-1); err != nil || !bytes.Equal(data, bytes.Repeat([]byte("L"), 8<<10)) {
		t.Fatalf("LoadBefore of the restored blob: %d bytes, %v", len(data), err)
	}
	if data, _, err := s.Load(ctx, 100); err != nil || !bytes.Equal(data, pattern(7, 0, 64<<10)) {
		t.Fatalf("Load of the restored blob: %d bytes, %v", len(data), err)
	}
	checkChains(t, s)

	// A rejected transaction leaves no file behind.
	bad := storage.Transaction{TID: big.TID + 1, Records: []storage.Record{{OID: 1, Data: pattern(8, 0, 4<<10)}}}
	if n, err := s.Restore(ctx, []storage.Transaction{bad}); !errors.Is(err, storage.ErrChainMismatch) || n != 0 {
		t.Fatalf("Restore with a bad chain: %d, %v", n, err)
	}
	wantBlobFiles(t, s, 2)
}

// Reads running while Pack removes the files of the revisions they are
// reading never report them corrupt: they start over, or leave the
// packed revision out.
func TestBlobPackWhileReading(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))
	c, _ := commitObjects(t, s, 1, []int{2 << 10}) // OID 1
	stop := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := s.Load(ctx, 1); err != nil {
				errs <- fmt.Errorf("Load: %w", err)
				return
			}
			if _, err := s.History(ctx, 1, 0); err != nil {
				errs <- fmt.Errorf("History: %w", err)
				return
			}
			if _, _, _, err := s.LoadBefore(ctx, 1, c.TID+1); err != nil && !errors.Is(err, storage.ErrNotFound) {
				errs <- fmt.Errorf("LoadBefore: %w", err)
				return
			}
			for _, err := range s.Objects(ctx, 0, 10, c.TID) {
				if err != nil {
					errs <- fmt.Errorf("Objects: %w", err)
					return
				}
			}
			it, err := s.Iterator(ctx, 0, 0)
			if err != nil {
				errs <- err
				return
			}
			for {
				_, err := it.Next(ctx)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					errs <- fmt.Errorf("Iterator: %w", err)
					return
				}
			}
			it.Close()
		}
	}()
	serial := c.TID
	for i := range 40 {
		txn := storeObjects(t, s, uint64(10+i), 2, nil)
		if err := txn.Store(ctx, 1, serial, pattern(2, i, 2<<10)); err != nil {
			t.Fatal(err)
		}
		c := commitTxn(t, txn)
		serial = c.TID
		if err := s.Pack(ctx, serial); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	wantBlobFiles(t, s, 1)
}

// A reader that reaches a blob file after Pack removed its revision is
// told so (and starts over), not that the file is corrupt.
func TestBlobPackedUnderReader(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, blobConfig(t, t.TempDir()))
	c1, _ := commitObjects(t, s, 1, []int{2 << 10}) // OID 1
	rtxn := s.db.NewTransactionAt(uint64(c1.TID), false)
	defer rtxn.Discard()
	item, err := rtxn.Get(objectKey(1))
	if err != nil {
		t.Fatal(err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := decodeBlobRef(v)
	if err != nil {
		t.Fatal(err)
	}
	txn := storeObjects(t, s, 2, 2, nil)
	if err := txn.Store(ctx, 1, c1.TID, pattern(2, 0, 2<<10)); err != nil {
		t.Fatal(err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatal(err)
	}
	c2, err := txn.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.readBlob(1, c1.TID, ref); err != nil {
		t.Fatalf("read before Pack: %v", err)
	}
	if err := s.Pack(ctx, c2.TID); err != nil {
		t.Fatal(err)
	}
	wantBlobFiles(t, s, 1)
	if _, err := s.readBlob(1, c1.TID, ref); !errors.Is(err, errBlobPacked) {
		t.Fatalf("read after Pack: %v, want errBlobPacked", err)
	}
}

// commitTxn votes and finishes txn, failing the test on an error.
func commitTxn(t *testing.T, txn storage.Txn) storage.Commit {
	t.Helper()
	c, err := storage.CommitTxn(t.Context(), txn)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
