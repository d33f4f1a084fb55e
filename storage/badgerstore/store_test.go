package badgerstore

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dgraph-io/badger/v4"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/storagetest"
)

func TestMain(m *testing.M) {
	if crashChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// testConfig is a small store for tests: a 4 MiB memtable keeps badger's
// memory low and makes transactions of a few thousand objects take the
// staged path.
func testConfig(t testing.TB, dir string) Config {
	return Config{
		Dir:            dir,
		Logger:         zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
		MemTableSize:   4 << 20,
		ValueThreshold: 4 << 10,
		BlockCacheSize: 8 << 20,
	}
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestConformance runs the storage suite durable, with NoSync (which
// publishes under the commit lock and writes value-log data without
// staging), and with a BlobThreshold so low that nearly every object is
// a blob file.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name          string
		noSync        bool
		blobThreshold int64
	}{
		{"NoSync=false", false, 0},
		{"NoSync=true", true, 0},
		{"BlobThreshold=64", false, 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, storagetest.Harness{
				Open: func(t *testing.T) storage.Storage {
					cfg := testConfig(t, t.TempDir())
					cfg.NoSync = c.noSync
					cfg.BlobThreshold = c.blobThreshold
					return openStore(t, cfg)
				},
				Reopen: func(t *testing.T, s storage.Storage) storage.Storage {
					st := s.(*Store)
					if err := st.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					return openStore(t, st.cfg)
				},
			})
		})
	}
}

// putRaw writes a raw badger entry, as damage on disk would look.
func putRaw(t *testing.T, s *Store, key, value []byte, userMeta byte, version uint64) {
	t.Helper()
	w := s.db.NewTransactionAt(math.MaxUint64, true)
	defer w.Discard()
	if err := w.SetEntry(badger.NewEntry(key, value).WithMeta(userMeta)); err != nil {
		t.Fatal(err)
	}
	if err := w.CommitAt(version, nil); err != nil {
		t.Fatal(err)
	}
}

// Bytes on disk that do not decode give errors wrapping ErrCorrupt.
func TestCorruptData(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, testConfig(t, t.TempDir()))
	c, oids := commitObjects(t, s, 1, []int{10, 20})

	putRaw(t, s, objectKey(oids[0]), []byte("x"), 7, uint64(c.TID))
	if _, _, err := s.Load(ctx, oids[0]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Load of a value with an unknown format: %v, want ErrCorrupt", err)
	}
	putRaw(t, s, txnKey(c.TID), []byte("short"), formatV1, uint64(c.TID))
	if _, err := s.Chain(ctx, c.TID); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Chain of a truncated transaction record: %v, want ErrCorrupt", err)
	}
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := it.Next(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("iterator over a truncated transaction record: %v, want ErrCorrupt", err)
	}
	it.Close()
	putRaw(t, s, txnKey(c.TID), encodeTxnRecord(txnRecord{Chain: c.Chain}), formatV1, uint64(c.TID))
	putRaw(t, s, recordsKey(c.TID), []byte{1, 2, 3}, formatV1, uint64(c.TID))
	it, err = s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := it.Next(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("iterator over a ragged record index: %v, want ErrCorrupt", err)
	}
	it.Close()

	putRaw(t, s, []byte{keyPackHorizon}, []byte{1}, formatV1, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s2, err := Open(ctx, s.cfg); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("Open with a corrupt pack horizon: %v, want ErrCorrupt", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "Dir") {
		t.Fatalf("empty Dir: %v", err)
	}
	if err := (Config{Dir: "d"}).Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := (Config{Dir: "d", MaxObjectSize: 4 << 30}).Validate(); err != nil {
		t.Fatalf("objects above a value log file in blob files: %v", err)
	}
	err := Config{Dir: "d", MemTableSize: 1 << 20, ValueThreshold: 1 << 20, MaxObjectSize: 4 << 30, BlobThreshold: 8 << 30}.Validate()
	for _, want := range []string{"ValueThreshold 1048576", "MaxObjectSize 4294967296 with BlobThreshold 8589934592"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("bad settings: %v, want it to name %q", err, want)
		}
	}
	if err := (Config{Dir: "d", BlobThreshold: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "BlobThreshold -1") {
		t.Fatalf("negative BlobThreshold: %v", err)
	}
	if _, err := Open(t.Context(), Config{Dir: t.TempDir(), NumCompactors: 1}); err == nil {
		t.Fatal("Open accepted NumCompactors 1")
	}
}

// Concurrent waiters share rounds, and each returns only after a round
// that started after it called wait.
func TestGroupSync(t *testing.T) {
	var started, finished atomic.Int64
	g := &groupSync{fn: func() error {
		started.Add(1)
		defer finished.Add(1)
		return nil
	}}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				before := started.Load()
				if err := g.wait(false); err != nil {
					t.Error(err)
					return
				}
				if finished.Load() <= before {
					t.Errorf("wait returned before a round that started after it finished")
					return
				}
			}
		}()
	}
	wg.Wait()
	if rounds := started.Load(); rounds > 16*200 {
		t.Fatalf("%d rounds for %d waits", rounds, 16*200)
	}
}

// A committer's round waits for the commits queued on the commit lock, so
// that one sync covers them too, but no longer than the previous round
// took.
func TestGroupSyncDefers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rounds atomic.Int64
		g := &groupSync{fn: func() error {
			rounds.Add(1)
			time.Sleep(time.Millisecond)
			return nil
		}, lastRound: time.Millisecond}
		g.enqueue() // a transaction holds the commit lock and will write
		done := make(chan error, 2)
		go func() { done <- g.wait(true) }()
		synctest.Wait()
		if n := rounds.Load(); n != 0 {
			t.Fatalf("%d rounds while a commit was about to write", n)
		}
		g.enqueue()                          // another one queues behind it
		g.dequeue()                          // the first one wrote...
		go func() { done <- g.wait(true) }() // ...and waits too
		synctest.Wait()
		if n := rounds.Load(); n != 0 {
			t.Fatalf("%d rounds while a commit was queued", n)
		}
		g.dequeue() // the last one gave up without writing
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if n := rounds.Load(); n != 1 {
			t.Fatalf("%d rounds for two committers, want 1", n)
		}

		// A commit that stays queued delays a round by the previous
		// round's duration at most; callers holding the commit lock do
		// not wait for it.
		g.enqueue()
		for _, deferrable := range []bool{true, false} {
			start := time.Now()
			if err := g.wait(deferrable); err != nil {
				t.Fatal(err)
			}
			want := time.Millisecond // the round
			if deferrable {
				want += g.lastRound
			}
			if waited := time.Since(start); waited != want {
				t.Fatalf("deferrable %v: waited %v, want %v", deferrable, waited, want)
			}
		}
		g.dequeue()
		if n := rounds.Load(); n != 3 {
			t.Fatalf("%d rounds, want 3", n)
		}
	})
}
