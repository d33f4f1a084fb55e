package storage_test

import (
	"errors"
	"testing"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

// The view's Close leaves the store open for its owner; closing the store
// closes the view's reads too.
func TestReadOnlyClose(t *testing.T) {
	ctx := t.Context()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatalf("memstore.New: %v", err)
	}
	defer s.Close()
	view := storage.ReadOnly(s)
	if err := view.Close(); err != nil {
		t.Fatalf("Close of the view: %v", err)
	}
	if _, err := view.LastTransaction(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("LastTransaction through a closed view: %v; want ErrClosed", err)
	}
	if _, err := view.Begin(ctx, storage.TxnMeta{}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Begin through a closed view: %v; want ErrClosed", err)
	}
	if _, err := s.LastTransaction(ctx); err != nil {
		t.Fatalf("the store after closing its view: %v", err)
	}

	view = storage.ReadOnly(s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := view.Load(ctx, 1); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Load through the view of a closed store: %v; want ErrClosed", err)
	}
	if _, err := view.NewOID(ctx); !errors.Is(err, storage.ErrReadOnly) {
		t.Fatalf("NewOID through the view of a closed store: %v; want ErrReadOnly", err)
	}
}
