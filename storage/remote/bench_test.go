package remote_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/internal/cputime"
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

// BenchmarkCommitClients commits one 100-byte object per transaction in
// one step (storage.CommitTxn), from 1 or 16 goroutines sharing one client
// (one connection, as the benchmark table's rows use) or each with a client
// of its own (every commit invalidates on 16 connections). Client and
// server run in this process, so cpu-ns/op is what one commit costs both
// sides together.
func BenchmarkCommitClients(b *testing.B) {
	ctx := context.Background()
	data := make([]byte, 100)
	for _, bc := range []struct {
		name             string
		workers, clients int
	}{
		{"1-client", 1, 1},
		{"16-goroutines-1-client", 16, 1},
		{"16-clients", 16, 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := serve(b, "", clientserver.Config{Store: memStore(b)})
			clients := make([]storage.Storage, bc.clients)
			for i := range clients {
				clients[i] = open(b, remote.Config{Primary: []string{s.Addr().String()}, CacheObjects: -1})
			}
			b.SetBytes(int64(len(data)))
			var next atomic.Int64
			next.Store(-1)
			var wg sync.WaitGroup
			errs := make(chan error, bc.workers)
			cpu0, cpuOK := cputime.Process()
			b.ResetTimer()
			for w := range bc.workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := clients[w%len(clients)]
					oid := storage.OID(w + 1)
					var serial storage.TID
					for next.Add(1) < int64(b.N) {
						txn, err := c.Begin(ctx, storage.TxnMeta{})
						if err == nil {
							_ = txn.Store(ctx, oid, serial, data)
							var cm storage.Commit
							cm, err = storage.CommitTxn(ctx, txn)
							serial = cm.TID
						}
						if err != nil {
							errs <- fmt.Errorf("worker %d: %w", w, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if cpu1, ok := cputime.Process(); ok && cpuOK {
				b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
			}
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
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
