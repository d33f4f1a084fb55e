package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
	"github.com/repld/repld/storage/memstore"
)

func newMem(t *testing.T) *memstore.Store {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRunCommitsConflictFree(t *testing.T) {
	s := newMem(t)
	res, err := Run(t.Context(), s, Config{Clients: 4, Transactions: 200, ObjectsPerTxn: 3, ObjectSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commits != 200 || res.Objects != 600 || res.Bytes != 600*50 || res.Reads != 0 {
		t.Fatalf("commits %d objects %d bytes %d reads %d, want 200, 600, 30000, 0", res.Commits, res.Objects, res.Bytes, res.Reads)
	}
	if res.Commit.Count != 200 || res.Commit.P50 <= 0 || res.Commit.P50 > res.Commit.P99 || res.Commit.P99 > res.Commit.Max {
		t.Fatalf("commit latency %+v: want 200 ordered values", res.Commit)
	}
	last, err := s.LastTransaction(t.Context())
	if err != nil || last != res.LastTID {
		t.Fatalf("store's last TID %s (%v), result's %s", last, err, res.LastTID)
	}
	// 4 clients × 3 objects, each rewritten by exactly one client.
	it, err := s.Iterator(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	writers := map[storage.OID]string{}
	n := 0
	for {
		tx, err := it.Next(t.Context())
		if err != nil {
			break
		}
		n++
		if len(tx.Records) != 3 {
			t.Fatalf("transaction %s has %d records, want 3", tx.TID, len(tx.Records))
		}
		for _, r := range tx.Records {
			if w, ok := writers[r.OID]; ok && w != string(tx.Meta.Description) {
				t.Fatalf("object %s written by %q and %q", r.OID, w, tx.Meta.Description)
			}
			writers[r.OID] = string(tx.Meta.Description)
		}
	}
	// The clients share the budget of 200, so one that starts late may
	// commit nothing: count the objects of the clients that did commit.
	owned := map[string]int{}
	for _, w := range writers {
		owned[w]++
	}
	if n != 200 || len(owned) == 0 || len(owned) > 4 || len(writers) != 3*len(owned) {
		t.Fatalf("%d transactions over %d objects by %d clients, want 200 over 3 per client, at most 4 clients", n, len(writers), len(owned))
	}
	for w, k := range owned {
		if k != 3 {
			t.Fatalf("%q wrote %d objects, want its own 3", w, k)
		}
	}
}

func TestRunReads(t *testing.T) {
	s := newMem(t)
	res, err := Run(t.Context(), s, Config{Transactions: 50, ReadRatio: 0.5, ObjectSize: 10, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commits != 50 || res.Reads == 0 || res.ReadBytes != res.Reads*10 || res.Read.Count != res.Reads {
		t.Fatalf("commits %d reads %d read bytes %d read latency count %d", res.Commits, res.Reads, res.ReadBytes, res.Read.Count)
	}
}

func TestRunStopsAtDuration(t *testing.T) {
	s := newMem(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, s, Config{Clients: 2, Duration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commits == 0 || res.CommitsPerSec() <= 0 || res.MBPerSec() <= 0 || res.ObjectsPerSec() <= 0 {
		t.Fatalf("result %+v: want commits and rates", res)
	}
}

// staleStore returns serial 0 from every Load.
type staleStore struct{ storage.Storage }

func (s staleStore) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	data, _, err := s.Storage.Load(ctx, oid)
	return data, 0, err
}

func TestRunDetectsStaleRead(t *testing.T) {
	_, err := Run(t.Context(), staleStore{newMem(t)}, Config{Transactions: 100, ReadRatio: 0.9})
	if !errors.Is(err, ErrStaleRead) {
		t.Fatalf("error %v, want ErrStaleRead", err)
	}
}

func TestRunStopsAtFirstError(t *testing.T) {
	fs := faultstore.New(newMem(t))
	boom := errors.New("disk on fire")
	fs.FailNext(faultstore.OpVote, boom, 1)
	res, err := Run(t.Context(), fs, Config{Clients: 3, Duration: time.Minute})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "vote") {
		t.Fatalf("error %v, want the injected vote failure", err)
	}
	if res.Clients != 3 {
		t.Fatalf("result %+v: want the partial result", res)
	}
}

// notReplicatedStore commits, then reports that the commit was not
// replicated, as a primary whose replicas are too slow does.
type notReplicatedStore struct{ storage.Storage }

type notReplicatedTxn struct{ storage.Txn }

func (s notReplicatedStore) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	t, err := s.Storage.Begin(ctx, meta)
	return notReplicatedTxn{t}, err
}

func (t notReplicatedTxn) Finish(ctx context.Context) (storage.Commit, error) {
	c, err := t.Txn.Finish(ctx)
	if err != nil {
		return c, err
	}
	return c, fmt.Errorf("finish %s: %w", c.TID, primary.ErrNotReplicated)
}

func TestRunCountsNotReplicated(t *testing.T) {
	res, err := Run(t.Context(), notReplicatedStore{newMem(t)}, Config{Transactions: 10, ReadRatio: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Commits != 10 || res.NotReplicated != 10 {
		t.Fatalf("commits %d not replicated %d, want 10 and 10", res.Commits, res.NotReplicated)
	}
}

func TestRunContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, newMem(t), Config{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Clients: -1}, "Clients is -1"},
		{Config{Duration: -time.Second}, "Duration is -1s"},
		{Config{Transactions: -2}, "Transactions is -2"},
		{Config{ObjectSize: MaxObjectSize + 1}, "ObjectSize is"},
		{Config{ObjectsPerTxn: -1}, "ObjectsPerTxn is -1"},
		{Config{ReadRatio: 1}, "ReadRatio is 1"},
		{Config{ReadRatio: -0.1}, "ReadRatio is -0.1"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
		if _, rerr := Run(t.Context(), nil, tc.cfg); rerr == nil {
			t.Errorf("Run(%+v) accepted a bad config", tc.cfg)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
}

// cancelAfter cancels its context once n commits finished.
type cancelAfter struct {
	storage.Storage
	n      *atomic.Int64
	cancel context.CancelFunc
}

func (s cancelAfter) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	if s.n.Add(-1) == 0 {
		s.cancel()
	}
	return s.Storage.Begin(ctx, meta)
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n atomic.Int64
	n.Store(20)
	res, err := Run(ctx, cancelAfter{newMem(t), &n, cancel}, Config{Duration: time.Minute})
	if !errors.Is(err, context.Canceled) || res.Commits > 20 {
		t.Fatalf("error %v after %d commits, want context.Canceled after at most 20", err, res.Commits)
	}
}
