package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dgraph-io/badger/v4"

	"github.com/repld/repld/storage"
)

// OverwriteRevision replaces the stored data of oid's existing revision
// serial in place, leaving the transaction's record index and chain value
// as they were: the store then holds an object state its history does not
// explain, as silent disk corruption or a buggy write would leave it.
// It exists so that tests can check that divergence detection (object
// digests) finds such damage; it is never part of serving a store.
// ErrNotFound if oid has no revision serial.
func (s *Store) OverwriteRevision(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := s.enter(ctx, "overwrite revision"); err != nil {
		return err
	}
	defer s.opMu.RUnlock()
	rtxn := s.db.NewTransactionAt(uint64(serial), false)
	item, err := rtxn.Get(objectKey(oid))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		err = storage.ErrNotFound
	case err == nil && storage.TID(item.Version()) != serial:
		err = fmt.Errorf("the revision at %s is %s: %w", serial, storage.TID(item.Version()), storage.ErrNotFound)
	}
	rtxn.Discard()
	if err != nil {
		return fmt.Errorf("badgerstore: overwrite %s at %s: %w", oid, serial, err)
	}
	w := s.db.NewTransactionAt(math.MaxUint64, true)
	defer w.Discard()
	if err := w.SetEntry(badger.NewEntry(objectKey(oid), data).WithMeta(formatV1)); err != nil {
		return fmt.Errorf("badgerstore: overwrite %s at %s: %w", oid, serial, err)
	}
	if err := w.CommitAt(uint64(serial), nil); err != nil {
		return fmt.Errorf("badgerstore: overwrite %s at %s: %w", oid, serial, err)
	}
	s.vlogDirty.Store(true)
	if err := s.durable(); err != nil {
		return fmt.Errorf("badgerstore: overwrite %s at %s: %w", oid, serial, err)
	}
	return nil
}
