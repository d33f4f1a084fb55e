package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/storagetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// reopen stands in for a restart: a new Store takes over the data of s as
// a persistent store would find it on disk (open transactions aborted by
// Close, OIDs handed out remembered).
func reopen(t *testing.T, s storage.Storage) storage.Storage {
	old := s.(*Store)
	old.mu.Lock()
	objects, txns, nextOID, usedUp := old.objects, old.txns, old.nextOID, old.oidsUsedUp
	old.mu.Unlock()
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := open(t, Config{Now: old.now, MaxObjectSize: old.maxObject})
	s2.objects, s2.txns, s2.nextOID, s2.oidsUsedUp = objects, txns, nextOID, usedUp
	return s2
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Harness{
		Open:   func(t *testing.T) storage.Storage { return open(t, Config{}) },
		Reopen: reopen,
	})
}

// TestConformanceFrozenClock runs the suite with a clock that never moves,
// so every TID after the first comes from last+1.
func TestConformanceFrozenClock(t *testing.T) {
	frozen := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T) storage.Storage { return open(t, Config{Now: func() time.Time { return frozen }}) },
	})
}

func TestConformanceReadOnly(t *testing.T) {
	storagetest.RunReadOnly(t, storagetest.ReadOnlyHarness{
		Open: func(t *testing.T) (storage.Storage, storage.Storage, func(context.Context, storage.TID) error) {
			s := open(t, Config{})
			return s, storage.ReadOnly(s), func(context.Context, storage.TID) error { return nil }
		},
	})
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	_, err := New(Config{MaxObjectSize: -1})
	if err == nil || !strings.Contains(err.Error(), "MaxObjectSize is -1") {
		t.Fatalf("New with MaxObjectSize -1: %v; want an error naming the setting and value", err)
	}
}

func TestMaxObjectSize(t *testing.T) {
	s := open(t, Config{MaxObjectSize: 4})
	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if err := txn.Store(ctx, 1, 0, []byte("four")); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := txn.Store(ctx, 2, 0, []byte("five!")); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := txn.Vote(ctx); !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("Vote with a 5-byte object: %v; want ErrTooLarge", err)
	}
	if _, _, err := s.Load(ctx, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Load(1) after a refused Vote: %v; want ErrNotFound", err)
	}
}

func TestOIDsUsedUp(t *testing.T) {
	s := open(t, Config{})
	ctx := t.Context()
	txn, err := s.Begin(ctx, storage.TxnMeta{})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	if err := txn.Store(ctx, math.MaxUint64, 0, nil); err != nil {
		t.Fatalf("Store: %v", err)
	}
	if err := txn.Vote(ctx); err != nil {
		t.Fatalf("Vote: %v", err)
	}
	if _, err := txn.FinishAt(ctx, 1, storage.Checksum{}); err != nil {
		t.Fatalf("FinishAt: %v", err)
	}
	if oid, err := s.NewOID(ctx); err == nil {
		t.Fatalf("NewOID after the largest OID was written = %s; want an error", oid)
	}
}

// BenchmarkCommit measures a whole two-phase commit of one object against
// copying the object once (the copy Store makes), run for run.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{100, 100 << 10} {
		data := make([]byte, size)
		b.Run(fmt.Sprintf("copy/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				_ = bytes.Clone(data)
			}
		})
		b.Run(fmt.Sprintf("commit/%d", size), func(b *testing.B) {
			s, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := b.Context()
			b.SetBytes(int64(size))
			var serial storage.TID
			n := 0
			for b.Loop() {
				txn, err := s.Begin(ctx, storage.TxnMeta{})
				if err != nil {
					b.Fatal(err)
				}
				if err := txn.Store(ctx, 1, serial, data); err != nil {
					b.Fatal(err)
				}
				if err := txn.Vote(ctx); err != nil {
					b.Fatal(err)
				}
				c, err := txn.Finish(ctx)
				if err != nil {
					b.Fatal(err)
				}
				serial = c.TID
				if n++; n%1000 == 0 { // bound the memory old revisions hold
					if err := s.Pack(ctx, serial); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
