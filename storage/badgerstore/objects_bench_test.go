package badgerstore

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// BenchmarkObjects measures listing the current state of a store of n
// 100-byte objects (each written twice, so every key has two versions)
// with Objects, against a raw badger iteration over the same keys reading
// every value in the same run: compare the ns/op of objects/n=N with
// badger/n=N. objects=1M is what a full verify of a million objects costs
// on one node, before hashing.
func BenchmarkObjects(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			s := fillObjects(b, n)
			b.Run("badger", func(b *testing.B) {
				b.SetBytes(int64(n) * 100)
				for b.Loop() {
					rtxn := s.db.NewTransactionAt(s.published.Load(), false)
					it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixObject}, PrefetchValues: true, PrefetchSize: 100})
					count := 0
					for it.Rewind(); it.Valid(); it.Next() {
						if err := it.Item().Value(func([]byte) error { count++; return nil }); err != nil {
							b.Fatal(err)
						}
					}
					it.Close()
					rtxn.Discard()
					if count != n {
						b.Fatalf("badger iterated %d objects; want %d", count, n)
					}
				}
			})
			b.Run("objects", func(b *testing.B) {
				b.SetBytes(int64(n) * 100)
				ctx := context.Background()
				for b.Loop() {
					count := 0
					for _, err := range s.Objects(ctx, 0, math.MaxUint64, math.MaxUint64) {
						if err != nil {
							b.Fatal(err)
						}
						count++
					}
					if count != n {
						b.Fatalf("Objects yielded %d objects; want %d", count, n)
					}
				}
			})
		})
	}
}

// fillObjects returns a NoSync store holding n objects of 100 bytes, each
// written twice.
func fillObjects(b *testing.B, n int) *Store {
	b.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: b.TempDir(), NoSync: true, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	const perTxn = 5000
	value := make([]byte, 100)
	serials := make([]storage.TID, n)
	for round := range 2 {
		for first := 0; first < n; first += perTxn {
			txn, err := s.Begin(ctx, storage.TxnMeta{})
			if err != nil {
				b.Fatal(err)
			}
			for i := first; i < min(first+perTxn, n); i++ {
				value[0], value[1] = byte(i), byte(round)
				if err := txn.Store(ctx, storage.OID(i), serials[i], append([]byte(nil), value...)); err != nil {
					b.Fatal(err)
				}
			}
			if err := txn.Vote(ctx); err != nil {
				b.Fatal(err)
			}
			c, err := txn.Finish(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for i := first; i < min(first+perTxn, n); i++ {
				serials[i] = c.TID
			}
		}
	}
	return s
}
