package remote_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// benchStores returns the baseline (a memstore used in-process) and the
// same kind of store behind a client server and the network client, so
// that one run gives the protocol's cost as a ratio.
func benchStores(b *testing.B) map[string]storage.Storage {
	s := serve(b, "", clientserver.Config{Store: memStore(b)})
	return map[string]storage.Storage{
		"local":  memStore(b),
		"remote": open(b, remote.Config{Primary: []string{s.Addr().String()}, CacheObjects: -1}),
	}
}

// commitModes are the ways the commit benchmarks end a transaction: the
// store's name, and whether to commit in one step (storage.CommitTxn)
// rather than with Vote then Finish.
var commitModes = []struct {
	name, store string
	oneStep     bool
}{
	{"local", "local", false},
	{"remote", "remote", false},
	{"remote-onestep", "remote", true},
}

// commitTxn votes and finishes txn, in one step or two.
func commitTxn(ctx context.Context, txn storage.Txn, oneStep bool) (storage.Commit, error) {
	if oneStep {
		return storage.CommitTxn(ctx, txn)
	}
	if err := txn.Vote(ctx); err != nil {
		return storage.Commit{}, err
	}
	return txn.Finish(ctx)
}

// BenchmarkCommit commits one 100-byte object per transaction.
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 100)
	for _, mode := range commitModes {
		b.Run(mode.name, func(b *testing.B) {
			s := benchStores(b)[mode.store]
			b.SetBytes(int64(len(data)))
			var serial storage.TID
			for b.Loop() {
				txn, err := s.Begin(ctx, storage.TxnMeta{})
				if err != nil {
					b.Fatal(err)
				}
				_ = txn.Store(ctx, 1, serial, data)
				c, err := commitTxn(ctx, txn, mode.oneStep)
				if err != nil {
					b.Fatal(err)
				}
				serial = c.TID
			}
		})
	}
}

// BenchmarkCommitParallel is BenchmarkCommit from 16 goroutines (on two
// CPUs), each committing its own object: throughput through the commit
// lock, which a remote two-step transaction holds from its vote's answer
// until its finish arrives, and a one-step one does not hold across the
// network at all.
func BenchmarkCommitParallel(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 100)
	for _, mode := range commitModes {
		b.Run(mode.name, func(b *testing.B) {
			s := benchStores(b)[mode.store]
			b.SetBytes(int64(len(data)))
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			var next atomic.Uint64
			b.RunParallel(func(pb *testing.PB) {
				oid := storage.OID(next.Add(1))
				var serial storage.TID
				for pb.Next() {
					txn, err := s.Begin(ctx, storage.TxnMeta{})
					if err != nil {
						b.Error(err)
						return
					}
					_ = txn.Store(ctx, oid, serial, data)
					c, err := commitTxn(ctx, txn, mode.oneStep)
					if err != nil {
						b.Error(err)
						return
					}
					serial = c.TID
				}
			})
		})
	}
}

// BenchmarkLoadLarge loads one 16 MiB object.
func BenchmarkLoadLarge(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 16<<20)
	for _, name := range []string{"local", "remote"} {
		b.Run(name, func(b *testing.B) {
			s := benchStores(b)[name]
			txn, _ := s.Begin(ctx, storage.TxnMeta{})
			_ = txn.Store(ctx, 1, 0, data)
			if err := txn.Vote(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := txn.Finish(ctx); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, _, err := s.Load(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRoundTrip is one call with a small answer: the protocol's
// latency floor.
func BenchmarkRoundTrip(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"local", "remote"} {
		b.Run(name, func(b *testing.B) {
			s := benchStores(b)[name]
			for b.Loop() {
				if _, err := s.LastTransaction(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
