package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
)

// committers is the number of concurrent committers of BenchmarkCommit.
const committers = 16

// BenchmarkCommit measures commits/s of one 100-byte new object per
// transaction with 16 concurrent committers: a local badgerstore alone,
// then a primary with no replica (its own cost), and with 1 and 2 replicas
// (badgerstores syncing every commit, used directly as nodes use them)
// over loopback TCP in each sync mode, with K = the number of replicas.
// Every sub-benchmark after the first also reports its rate as a ratio of
// the local one measured in the same run ("x-local").
func BenchmarkCommit(b *testing.B) {
	var local float64
	b.Run("local", func(b *testing.B) { local = runCommits(b, localStore(b), committers) })
	for _, n := range []int{0, 1, 2} {
		for _, mode := range []primary.Mode{primary.Async, primary.Received, primary.Applied} {
			if n == 0 && mode != primary.Async {
				continue // nothing to wait for
			}
			b.Run(fmt.Sprintf("replicas=%d/%s", n, mode), func(b *testing.B) {
				rate := runCommits(b, durableCluster(b, mode, n).Primary, committers)
				if local > 0 {
					b.ReportMetric(rate/local, "x-local")
				}
			})
		}
	}
}

// BenchmarkCommitLatency is BenchmarkCommit with one committer, so its
// ns/op is the commit latency: a local badgerstore alone, then a primary
// with one replica in applied mode; the second reports its latency as a
// ratio of the local one measured in the same run ("x-local").
func BenchmarkCommitLatency(b *testing.B) {
	var local float64
	b.Run("local", func(b *testing.B) { local = runCommits(b, localStore(b), 1) })
	b.Run("replicas=1/applied", func(b *testing.B) {
		rate := runCommits(b, durableCluster(b, primary.Applied, 1).Primary, 1)
		if rate > 0 && local > 0 {
			b.ReportMetric(local/rate, "x-local")
		}
	})
}

// localStore opens a durable badgerstore alone, closed by b's cleanup.
func localStore(b *testing.B) *badgerstore.Store {
	b.Helper()
	s, err := badgerstore.Open(context.Background(), badgerstore.Config{Dir: filepath.Join(b.TempDir(), "store")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// durableCluster starts a primary with n healthy replicas over loopback
// TCP, every store a badgerstore syncing every commit and used directly,
// as nodes use them, in sync mode (K = n).
func durableCluster(b *testing.B, mode primary.Mode, n int) *Cluster {
	b.Helper()
	c := New(b, Config{Badger: true, BadgerSync: true, TCP: true, DirectReplicaStores: true,
		Sync: primary.SyncPolicy{Mode: mode, Replicas: n}})
	var rs []string
	for i := range n {
		rs = append(rs, c.AddReplica(fmt.Sprintf("r%d", i+1)).Name)
	}
	c.WaitHealthy(rs...)
	return c
}

// runCommits commits one 100-byte object per transaction from n
// goroutines for every b.Loop iteration and returns commits/s.
func runCommits(b *testing.B, s storage.Storage, n int) float64 {
	b.Helper()
	var oid atomic.Uint64
	data := make([]byte, 100)
	work := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for range work {
				// Each transaction writes a new object, so committers never
				// conflict; data is shared and never modified.
				if _, err := commitObj(context.Background(), s, storage.OID(oid.Add(1)), 0, data); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	b.SetBytes(int64(len(data)))
	count := 0
	for b.Loop() {
		select {
		case work <- struct{}{}:
		case err := <-errs:
			close(work)
			wg.Wait()
			b.Fatal(err)
		}
		count++
	}
	elapsed := b.Elapsed()
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	rate := float64(count) / elapsed.Seconds()
	b.ReportMetric(rate, "commits/s")
	return rate
}

// catchUpTxns is the history BenchmarkCatchUp replays.
const catchUpTxns = 20000

// BenchmarkCatchUp measures the replay of catchUpTxns small transactions
// (one new 100-byte object each) to a new, empty replica: every iteration
// starts one and waits until it applied the primary's last transaction.
// Both stores sync every commit. The Cluster wraps every store in a
// faultstore, which hides badgerstore's Restore, so this measures the
// generic replay path (pipelined Vote and FinishAt); the benchmark table
// and badgerstore's BenchmarkRestore measure the batched one. It also
// reports the rate as a ratio of the primary's own commit rate of that
// history with 16 committers, measured in the same run ("x-commit").
func BenchmarkCatchUp(b *testing.B) {
	c := New(b, Config{Badger: true, BadgerSync: true, TCP: true, WaitBound: 5 * time.Minute})
	start := time.Now()
	if err := commitMany(c.Primary, catchUpTxns); err != nil {
		b.Fatal(err)
	}
	commit := catchUpTxns / time.Since(start).Seconds()
	b.SetBytes(catchUpTxns * 100)
	i := 0
	for b.Loop() {
		i++
		r := c.AddReplica(fmt.Sprintf("r%d", i))
		c.WaitCaughtUp(r.Name)
		b.StopTimer()
		r.Stop()
		b.StartTimer()
	}
	rate := float64(i*catchUpTxns) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "txns/s")
	b.ReportMetric(rate/commit, "x-commit")
}

// commitMany commits n transactions of one new 100-byte object each from
// committers goroutines.
func commitMany(s storage.Storage, n int) error {
	var oid atomic.Uint64
	data := make([]byte, 100)
	errs := make(chan error, committers)
	var wg sync.WaitGroup
	for range committers {
		wg.Go(func() {
			for {
				o := oid.Add(1)
				if o > uint64(n) {
					return
				}
				if _, err := commitObj(context.Background(), s, storage.OID(o), 0, data); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
