package replica

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/badgerstore"
	"github.com/repld/repld/wire"
)

func openBadger(b *testing.B) *badgerstore.Store {
	b.Helper()
	s, err := badgerstore.Open(context.Background(), badgerstore.Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkApply measures how fast a replica applies a live stream of
// transactions of one 100-byte object into a durable badgerstore, against
// the baseline of 16 committers writing the same transactions directly
// into one (the primary's local commit rate). Compare the two ns/op in one
// run: the replica must keep up with the primary for applied mode to
// approach local speed.
func BenchmarkApply(b *testing.B) {
	data := make([]byte, 100)
	meta := storage.TxnMeta{User: []byte("bench")}
	b.Run("local-16-committers", func(b *testing.B) {
		s := openBadger(b)
		ctx := context.Background()
		var next sync.Mutex
		b.SetBytes(int64(len(data)))
		b.SetParallelism(8) // 16 committers on 2 cores
		oid := storage.OID(0)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				next.Lock()
				oid++
				o := oid
				next.Unlock()
				txn, err := s.Begin(ctx, meta)
				if err == nil {
					err = txn.Store(ctx, o, 0, data)
				}
				if err == nil {
					err = txn.Vote(ctx)
				}
				if err == nil {
					_, err = txn.Finish(ctx)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, pipeline := range []bool{false, true} {
		name := "replica-sequential"
		if pipeline {
			name = "replica-pipelined"
		}
		b.Run(name, func(b *testing.B) {
			s := openBadger(b)
			env := &syncEnv{}
			c := newCore(s, env, zap.NewNop(), 1, 0, nil)
			c.pipeline = pipeline
			ctx := context.Background()
			var (
				seq   uint64
				tid   storage.TID
				chain storage.Checksum
			)
			c.step(ctx, &wire.Live{Epoch: 1, NextSeq: 1})
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				seq++
				tid = storage.NextTID(time.Now(), tid)
				chain = storage.NextChain(chain, tid, meta, []storage.RecordDigest{storage.DigestRecord(storage.OID(seq), data)})
				for _, m := range []wire.Message{
					&wire.Begin{Epoch: 1, Seq: seq, User: meta.User},
					&wire.Store{Epoch: 1, Seq: seq, OID: seq, Data: data},
					&wire.Vote{Epoch: 1, Seq: seq},
					&wire.Finish{Epoch: 1, Seq: seq, TID: uint64(tid), Chain: wire.Chain(chain)},
				} {
					c.step(ctx, m)
				}
			}
			if f := c.drain(); f != nil || c.quarantine != nil || env.n != int(seq) {
				b.Fatalf("applied %d of %d; quarantined: %v %v", env.n, seq, f, c.quarantine)
			}
		})
	}
}

// syncEnv is a coreEnv safe for pipelined finishes that counts what was
// applied.
type syncEnv struct {
	mu sync.Mutex
	n  int
}

func (*syncEnv) send(wire.Message)               {}
func (*syncEnv) saveEpoch(uint64) error          { return nil }
func (*syncEnv) saveQuarantine(Quarantine) error { return nil }
func (e *syncEnv) applied(storage.TID)           { e.mu.Lock(); e.n++; e.mu.Unlock() }
func (*syncEnv) wake()                           {}
func (*syncEnv) now() time.Time                  { return time.Time{} }
