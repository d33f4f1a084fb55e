package badgerstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/internal/cputime"
	"github.com/repld/repld/storage"
)

// BenchmarkCommit measures durable commits of one 100-byte object per
// transaction at 1 and 16 concurrent committers, against raw badger
// Update (a normal database, SyncWrites on) of the same keys and values
// in the same run: compare the ns/op of store/N with badger/N. The
// store-nosync runs leave out the sync rounds: their ns/op is mostly the
// CPU of the commit path.
func BenchmarkCommit(b *testing.B) {
	value := make([]byte, 100)
	for _, committers := range []int{1, 16} {
		b.Run(fmt.Sprintf("badger/committers=%d", committers), func(b *testing.B) {
			cfg := Config{Dir: b.TempDir()}.withDefaults()
			db, err := badger.Open(cfg.badgerOptions().WithSyncWrites(true).WithLogger(nil).WithDetectConflicts(true))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			runCommitters(b, committers, func(oid uint64) error {
				return db.Update(func(txn *badger.Txn) error {
					return txn.Set(objectKey(storage.OID(oid)), value)
				})
			})
		})
		for _, noSync := range []bool{false, true} {
			name := "store"
			if noSync {
				name = "store-nosync" // the commit path's CPU without the sync rounds
			}
			b.Run(fmt.Sprintf("%s/committers=%d", name, committers), func(b *testing.B) {
				benchStoreCommits(b, committers, noSync, value)
			})
		}
	}
}

// benchStoreCommits runs BenchmarkCommit's store commits.
func benchStoreCommits(b *testing.B, committers int, noSync bool, value []byte) {
	s, err := Open(context.Background(), Config{Dir: b.TempDir(), Logger: zap.NewNop(), NoSync: noSync})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	runCommitters(b, committers, func(oid uint64) error {
		txn, err := s.Begin(ctx, storage.TxnMeta{})
		if err != nil {
			return err
		}
		if err := txn.Store(ctx, storage.OID(oid), 0, value); err != nil {
			return err
		}
		if err := txn.Vote(ctx); err != nil {
			return err
		}
		_, err = txn.Finish(ctx)
		return err
	})
}

// runCommitters runs commit with fresh OIDs from n goroutines (n = 1:
// the benchmark goroutine) until the benchmark has enough samples. Besides
// the time per commit it reports the process's CPU time per commit
// (cpu-ns/op, background work included), which other load on the machine
// disturbs less than the time.
func runCommitters(b *testing.B, n int, commit func(oid uint64) error) {
	b.SetBytes(100)
	cpu0, cpuOK := cputime.Process()
	var next atomic.Uint64
	if n == 1 {
		for b.Loop() {
			if err := commit(next.Add(1)); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism((n + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := commit(next.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	if cpu1, ok := cputime.Process(); ok && cpuOK {
		b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkLargeObject measures durable commits of one 16 MiB object per
// transaction, in the same run: raw badger Update of the same key and
// value (SyncWrites on); the store, which keeps the object in a blob
// file; the store with the object in badger (BlobThreshold above it,
// so the transaction is staged); and a plain file, 16 MiB written to a
// new file through the page cache and synced. Compare the MB/s; the
// store writes its blob files around the page cache (O_DIRECT), so on a
// disk that is quicker that way it can beat the plain file.
func BenchmarkLargeObject(b *testing.B) {
	const size = 16 << 20
	value := pattern(1, 0, size)
	b.Run("badger", func(b *testing.B) {
		cfg := Config{Dir: b.TempDir()}.withDefaults()
		db, err := badger.Open(cfg.badgerOptions().WithSyncWrites(true).WithLogger(nil).WithDetectConflicts(true))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		b.SetBytes(size)
		for b.Loop() {
			if err := db.Update(func(txn *badger.Txn) error { return txn.Set(objectKey(1), value) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, sub := range []struct {
		name          string
		blobThreshold int64
	}{
		{"store", 0},
		{"store-inline", size + 1},
	} {
		b.Run(sub.name, func(b *testing.B) {
			s, err := Open(context.Background(), Config{Dir: b.TempDir(), BlobThreshold: sub.blobThreshold})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.SetBytes(size)
			var serial storage.TID
			for b.Loop() {
				txn, err := s.Begin(ctx, storage.TxnMeta{})
				if err != nil {
					b.Fatal(err)
				}
				if err := txn.Store(ctx, 1, serial, value); err != nil {
					b.Fatal(err)
				}
				c, err := storage.CommitTxn(ctx, txn)
				if err != nil {
					b.Fatal(err)
				}
				serial = c.TID
			}
		})
	}
	b.Run("file", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(size)
		n := 0
		for b.Loop() {
			n++
			f, err := os.Create(filepath.Join(dir, strconv.Itoa(n)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(value); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
