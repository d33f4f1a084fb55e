package storagetest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/repld/repld/storage"
)

// ReadOnlyHarness tells RunReadOnly how to get a read-only view.
type ReadOnlyHarness struct {
	// Open returns a new, empty writable store, a read-only view of it and
	// sync, which returns once the view reflects every transaction up to
	// and including tid (a replica catching up). Open registers cleanup
	// with t.Cleanup. Required.
	Open func(t *testing.T) (writer, reader storage.Storage, sync func(ctx context.Context, tid storage.TID) error)
}

// RunReadOnly checks a read-only view: writes go through the writer, reads
// through the reader after sync returns, and every write method of the
// reader fails with storage.ErrReadOnly.
func RunReadOnly(t *testing.T, h ReadOnlyHarness) {
	if h.Open == nil {
		t.Fatal("storagetest: ReadOnlyHarness.Open is nil; set it to a function returning a writer, its read-only view and a sync function")
	}
	t.Run("WritesRejected", func(t *testing.T) {
		w, r, sync := h.Open(t)
		ctx := t.Context()
		c := commit(t, w, meta1, write{1, 0, []byte("x")})
		if err := sync(ctx, c.TID); err != nil {
			t.Fatalf("sync(%s): %v", c.TID, err)
		}
		txn, err := r.Begin(ctx, meta1)
		wantErr(t, "Begin on a read-only view", err, storage.ErrReadOnly)
		if txn != nil {
			t.Fatal("Begin on a read-only view returned a transaction")
		}
		_, err = r.NewOID(ctx)
		wantErr(t, "NewOID on a read-only view", err, storage.ErrReadOnly)
		wantErr(t, "Pack on a read-only view", r.Pack(ctx, c.TID+1), storage.ErrReadOnly)
		// The writer and the view are unaffected.
		hist, err := r.History(ctx, 1, 0)
		if err != nil || len(hist) != 1 {
			t.Fatalf("History through the view after a refused Pack = %v, %v", hist, err)
		}
		commit(t, w, meta1, write{1, c.TID, []byte("y")})
	})
	t.Run("ReadsAfterSync", func(t *testing.T) {
		w, r, sync := h.Open(t)
		m := newModel()
		rng := rand.New(rand.NewPCG(11, 12))
		for range 3 {
			history(t, w, m, rng, 15, 8)
			tid, _ := m.last()
			if err := sync(t.Context(), tid); err != nil {
				t.Fatalf("sync(%s): %v", tid, err)
			}
			m.check(t, r)
			if l, ok := r.(storage.ObjectLister); ok && listsObjects(t, l) {
				m.checkObjects(t, l, 0, math.MaxUint64, tid)
			}
		}
	})
	t.Run("Closed", func(t *testing.T) {
		w, r, sync := h.Open(t)
		ctx := t.Context()
		c := commit(t, w, meta1, write{1, 0, []byte("x")})
		if err := sync(ctx, c.TID); err != nil {
			t.Fatalf("sync(%s): %v", c.TID, err)
		}
		if err := r.Close(); err != nil {
			t.Fatalf("Close of the view: %v", err)
		}
		_, _, err := r.Load(ctx, 1)
		wantErr(t, "Load through a closed view", err, storage.ErrClosed)
		_, err = r.LastTransaction(ctx)
		wantErr(t, "LastTransaction through a closed view", err, storage.ErrClosed)
		if err := r.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Fatalf("second Close of the view: %v; want nil or ErrClosed", err)
		}
	})
}
