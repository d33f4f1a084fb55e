package benchtable

import (
	"bytes"
	"errors"
	"testing"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
)

func newMemstore(t *testing.T) *memstore.Store {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mirrorCommit(t *testing.T, m *mirror, oid storage.OID, serial storage.TID, data []byte) (storage.Commit, error) {
	t.Helper()
	txn, err := m.Begin(t.Context(), storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Store(t.Context(), oid, serial, data); err != nil {
		return storage.Commit{}, errors.Join(err, txn.Abort(t.Context()))
	}
	return storage.CommitTxn(t.Context(), txn)
}

func loadBoth(t *testing.T, a, b storage.Storage, oid storage.OID) (da, db []byte) {
	t.Helper()
	da, _, err := a.Load(t.Context(), oid)
	if err != nil {
		t.Fatal(err)
	}
	db, _, err = b.Load(t.Context(), oid)
	if err != nil {
		t.Fatal(err)
	}
	return da, db
}

// Every commit reaches both stores, each object's revisions chaining in
// each store by that store's own TIDs; a conflict on the first store
// commits nothing anywhere.
func TestMirror(t *testing.T) {
	a, b := newMemstore(t), newMemstore(t)
	// The second store gets ahead, so its TIDs differ from the first's.
	if _, err := storage.CommitTxn(t.Context(), mustBegin(t, b)); err != nil {
		t.Fatal(err)
	}
	m := newMirror(a, b)
	oid, err := m.NewOID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var serial storage.TID
	for i, data := range [][]byte{[]byte("one"), []byte("two"), []byte("three")} {
		c, err := mirrorCommit(t, m, oid, serial, data)
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		serial = c.TID
		if da, db := loadBoth(t, a, b, oid); !bytes.Equal(da, data) || !bytes.Equal(db, data) {
			t.Fatalf("commit %d: stores hold %q and %q, want %q", i, da, db, data)
		}
	}
	if _, err := mirrorCommit(t, m, oid, 1, []byte("stale")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("stale serial: %v, want a conflict", err)
	}
	if da, db := loadBoth(t, a, b, oid); string(da) != "three" || string(db) != "three" {
		t.Fatalf("after a conflict the stores hold %q and %q, want both %q", da, db, "three")
	}
}

func mustBegin(t *testing.T, s storage.Storage) storage.Txn {
	t.Helper()
	txn, err := s.Begin(t.Context(), storage.TxnMeta{})
	if err != nil {
		t.Fatal(err)
	}
	return txn
}
