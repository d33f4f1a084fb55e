package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

// sourceHistory commits a history to a memstore and returns it: new
// objects, overwrites, a transaction of several objects and one whose
// object exceeds the test ValueThreshold (so it cannot be written in one
// batch with sync on).
func sourceHistory(t *testing.T) []storage.Transaction {
	t.Helper()
	ctx := context.Background()
	src, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	serials := map[storage.OID]storage.TID{}
	commit := func(data map[storage.OID][]byte) {
		txn, err := src.Begin(ctx, storage.TxnMeta{User: []byte("u"), Description: []byte("d")})
		if err != nil {
			t.Fatal(err)
		}
		for oid, d := range data {
			if err := txn.Store(ctx, oid, serials[oid], d); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := txn.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for oid := range data {
			serials[oid] = c.TID
		}
	}
	for i := range 20 {
		commit(map[storage.OID][]byte{storage.OID(i%7 + 1): {byte(i)}})
	}
	commit(map[storage.OID][]byte{1: []byte("a"), 2: []byte("b"), 9: []byte("c")})
	commit(map[storage.OID][]byte{3: bytes.Repeat([]byte("L"), 8<<10)})
	commit(map[storage.OID][]byte{3: []byte("small again")})
	it, err := src.Iterator(ctx, 0, storage.TID(1<<63))
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var txns []storage.Transaction
	for {
		tx, err := it.Next(ctx)
		if err == io.EOF {
			return txns
		}
		if err != nil {
			t.Fatal(err)
		}
		txns = append(txns, *tx)
	}
}

// TestRestore restores a history in batches (with the large transaction
// taking the one-by-one path) and finds it, reopened, equal to the
// source: transactions, chain values and current objects.
func TestRestore(t *testing.T) {
	t.Run("Restore", func(t *testing.T) { testRestore(t, false) })
	t.Run("RestoreDeferred", func(t *testing.T) { testRestore(t, true) })
}

// testRestore restores a history in parts, with RestoreDeferred if
// deferred is set (waiting for each part only after the next is written,
// as a replica does), and checks it after reopening the store.
func testRestore(t *testing.T, deferred bool) {
	ctx := context.Background()
	txns := sourceHistory(t)
	dir := t.TempDir()
	s := openStore(t, testConfig(t, dir))
	wait := func() error { return nil }
	for i := 0; i < len(txns); i += 10 {
		part := txns[i:min(i+10, len(txns))]
		var n int
		var err error
		if deferred {
			var next func() error
			n, next, err = s.RestoreDeferred(ctx, part)
			if werr := wait(); werr != nil {
				t.Fatalf("wait for the part before %s: %v", part[0].TID, werr)
			}
			wait = next
		} else {
			n, err = s.Restore(ctx, part)
		}
		if err != nil || n != len(part) {
			t.Fatalf("Restore of %d transactions: %d, %v", len(part), n, err)
		}
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if last, err := s.LastTransaction(ctx); err != nil || last != txns[len(txns)-1].TID {
		t.Fatalf("LastTransaction after the last wait = %s, %v; want %s", last, err, txns[len(txns)-1].TID)
	}
	s.Close()
	s = openStore(t, testConfig(t, dir))
	last, err := s.LastTransaction(ctx)
	if err != nil || last != txns[len(txns)-1].TID {
		t.Fatalf("LastTransaction = %s, %v; want %s", last, err, txns[len(txns)-1].TID)
	}
	it, err := s.Iterator(ctx, 0, last)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	current := map[storage.OID]storage.Revision{}
	for _, want := range txns {
		got, err := it.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got.TID != want.TID || got.Chain != want.Chain || len(got.Records) != len(want.Records) {
			t.Fatalf("transaction %s: got %s chain %s (%d records), want chain %s (%d records)",
				want.TID, got.TID, got.Chain, len(got.Records), want.Chain, len(want.Records))
		}
		for _, r := range want.Records {
			current[r.OID] = storage.Revision{TID: want.TID, Data: r.Data}
		}
	}
	for oid, want := range current {
		data, serial, err := s.Load(ctx, oid)
		if err != nil || !bytes.Equal(data, want.Data) || serial != want.TID {
			t.Errorf("Load(%s) = %d bytes at %s, %v; want %d bytes at %s", oid, len(data), serial, err, len(want.Data), want.TID)
		}
	}
}

// TestRestoreStopsAtTheFirstBadTransaction: a chain mismatch or a TID out
// of order leaves exactly the transactions before it, durable.
func TestRestoreStopsAtTheFirstBadTransaction(t *testing.T) {
	ctx := context.Background()
	txns := sourceHistory(t)
	s := openStore(t, testConfig(t, t.TempDir()))

	bad := append([]storage.Transaction(nil), txns[:8]...)
	bad[5].Chain[0] ^= 1
	n, err := s.Restore(ctx, bad)
	if !errors.Is(err, storage.ErrChainMismatch) || n != 5 {
		t.Fatalf("Restore with a bad chain at 5 = %d, %v; want 5, ErrChainMismatch", n, err)
	}
	if last, _ := s.LastTransaction(ctx); last != txns[4].TID {
		t.Fatalf("LastTransaction = %s, want %s", last, txns[4].TID)
	}
	if _, err := s.Chain(ctx, txns[5].TID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Chain of the rejected transaction: %v, want ErrNotFound", err)
	}

	n, err = s.Restore(ctx, txns[3:])
	if !errors.Is(err, storage.ErrTIDOrder) || n != 0 {
		t.Fatalf("Restore of transactions already there = %d, %v; want 0, ErrTIDOrder", n, err)
	}
	n, err = s.Restore(ctx, txns[5:])
	if err != nil || n != len(txns)-5 {
		t.Fatalf("Restore of the rest = %d, %v", n, err)
	}
	if last, _ := s.LastTransaction(ctx); last != txns[len(txns)-1].TID {
		t.Fatalf("LastTransaction = %s, want %s", last, txns[len(txns)-1].TID)
	}
}

// BenchmarkRestore measures a replica's catch-up of small transactions
// (one new 100-byte object each, durable): one at a time through Begin,
// Vote and FinishAt, each waiting for its sync, against Restore in
// batches of restoreBatchBench, in the same run. The restore
// sub-benchmark reports its rate as a ratio of the first ("x-finishat").
func BenchmarkRestore(b *testing.B) {
	const restoreBatchBench = 4096
	data := make([]byte, 100)
	var oneByOne float64
	next := func(prev storage.Checksum, i int) storage.Transaction { return newObjectTxn(prev, i, data) }
	b.Run("finishat", func(b *testing.B) {
		s, err := Open(context.Background(), Config{Dir: b.TempDir(), Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		var chain storage.Checksum
		i := 0
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			tx := next(chain, i)
			t, err := s.Begin(ctx, tx.Meta)
			if err == nil {
				err = t.Store(ctx, tx.Records[0].OID, 0, data)
			}
			if err == nil {
				err = t.Vote(ctx)
			}
			if err == nil {
				_, err = t.FinishAt(ctx, tx.TID, tx.Chain)
			}
			if err != nil {
				b.Fatal(err)
			}
			chain = tx.Chain
			i++
		}
		oneByOne = float64(i) / b.Elapsed().Seconds()
	})
	b.Run("restore", func(b *testing.B) {
		s, err := Open(context.Background(), Config{Dir: b.TempDir(), Logger: zap.NewNop()})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		var chain storage.Checksum
		batch := make([]storage.Transaction, 0, restoreBatchBench)
		flush := func() {
			if n, err := s.Restore(ctx, batch); err != nil || n != len(batch) {
				b.Fatalf("Restore of %d: %d, %v", len(batch), n, err)
			}
			batch = batch[:0]
		}
		i := 0
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			tx := next(chain, i)
			batch = append(batch, tx)
			if len(batch) == restoreBatchBench {
				flush()
			}
			chain = tx.Chain
			i++
		}
		flush()
		if oneByOne > 0 {
			b.ReportMetric(float64(i)/b.Elapsed().Seconds()/oneByOne, "x-finishat")
		}
	})
}

// BenchmarkIterator measures reading a history of small transactions (one
// 100-byte object each) through Iterator, as a primary's catch-up and
// resync do; it reports transactions read per second.
func BenchmarkIterator(b *testing.B) {
	const txns = 20000
	s, err := Open(context.Background(), Config{Dir: b.TempDir(), Logger: zap.NewNop(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 100)
	var chain storage.Checksum
	history := make([]storage.Transaction, 0, txns)
	for i := range txns {
		tx := newObjectTxn(chain, i, data)
		history = append(history, tx)
		chain = tx.Chain
	}
	if n, err := s.Restore(ctx, history); err != nil || n != txns {
		b.Fatalf("Restore: %d, %v", n, err)
	}
	read := 0
	for b.Loop() {
		for tx, err := range storage.Transactions(ctx, s, 0, 0) {
			if err != nil {
				b.Fatal(err)
			}
			if len(tx.Records) != 1 {
				b.Fatalf("transaction %s has %d records", tx.TID, len(tx.Records))
			}
			read++
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "txns/s")
}

// newObjectTxn returns the i-th transaction (from 0) of a history in which
// each writes one new object with data, after the one whose chain is prev.
func newObjectTxn(prev storage.Checksum, i int, data []byte) storage.Transaction {
	tid, oid := storage.TID(i+1), storage.OID(i+1)
	digest := storage.DigestRecord(oid, data)
	return storage.Transaction{TID: tid, Chain: storage.NextChain(prev, tid, storage.TxnMeta{}, []storage.RecordDigest{digest}),
		Records: []storage.Record{{OID: oid, Data: data}}}
}
