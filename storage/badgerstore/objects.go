package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/dgraph-io/badger/v4"

	"github.com/repld/repld/storage"
)

var (
	_ storage.ObjectLister = (*Store)(nil)
	_ storage.TxnSeeker    = (*Store)(nil)
)

// Objects implements storage.ObjectLister with one badger iteration over
// the o keys of the range. At a snapshot at or after the pack horizon the
// newest version at the snapshot is never packed away, so the iterator
// reads at the snapshot and sees one version per key. Below the horizon it
// reads every version up to the horizon and applies the pack filter of
// LoadBefore: a revision whose successor is at or before the horizon is
// gone. The store stays open (Close waits) until the iteration ends, so
// the loop body must not call the store: with a Close pending, that call
// would wait for the iteration that waits for it.
func (s *Store) Objects(ctx context.Context, from, to storage.OID, at storage.TID) iter.Seq2[storage.ObjectState, error] {
	return func(yield func(storage.ObjectState, error) bool) {
		if err := s.enter(ctx, "objects"); err != nil {
			yield(storage.ObjectState{}, err)
			return
		}
		defer s.opMu.RUnlock()
		if err := s.objects(ctx, from, to, at, yield); err != nil {
			yield(storage.ObjectState{}, fmt.Errorf("badgerstore: objects %s to %s at %s: %w", from, to, at, err))
		}
	}
}

// objects runs the iteration of Objects; it returns nil when yield asks
// to stop.
func (s *Store) objects(ctx context.Context, from, to storage.OID, at storage.TID, yield func(storage.ObjectState, error) bool) error {
	snap := min(at, storage.TID(s.published.Load()))
	horizon := storage.TID(s.horizon.Load())
	readTs, allVersions := snap, snap < horizon
	if allVersions {
		readTs = horizon
	}
	rtxn := s.db.NewTransactionAt(uint64(readTs), false)
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{
		Prefix:         []byte{prefixObject},
		AllVersions:    allVersions,
		PrefetchValues: !allVersions, // with every version, most values are skipped
		PrefetchSize:   100,
	})
	defer it.Close()

	var (
		cur   storage.OID
		seen  bool        // cur was met
		done  bool        // cur was yielded or found packed
		newer storage.TID // the version of cur met before, if any
		n     int
	)
	for it.Seek(objectKey(from)); it.Valid(); it.Next() {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		item := it.Item()
		k, err := decodeKey9(item.Key(), prefixObject)
		if err != nil {
			return err
		}
		oid := storage.OID(k)
		if oid > to {
			return nil
		}
		if !seen || oid != cur {
			cur, seen, done, newer = oid, true, false, 0
		}
		v := storage.TID(item.Version())
		if done {
			continue
		}
		if item.IsDeletedOrExpired() {
			return fmt.Errorf("%w: object %s has a deletion marker at version %d", ErrCorrupt, oid, v)
		}
		if v > snap {
			newer = v
			continue
		}
		done = true
		if newer != 0 && newer <= horizon {
			continue // packed away
		}
		more := true
		switch m := item.UserMeta(); m {
		case formatV1:
			if err := item.Value(func(data []byte) error {
				more = yield(storage.ObjectState{OID: oid, Serial: v, Data: data}, nil)
				return nil
			}); err != nil {
				return fmt.Errorf("read %s at %s: %w", oid, v, err)
			}
		case formatBlob:
			data, err := s.objectValue(item, oid)
			if errors.Is(err, errBlobPacked) {
				continue // packed since the iteration started
			}
			if err != nil {
				return err
			}
			more = yield(storage.ObjectState{OID: oid, Serial: v, Data: data}, nil)
		default:
			return fmt.Errorf("%w: object %s version %d has format %d, want %d or %d", ErrCorrupt, oid, v, m, formatV1, formatBlob)
		}
		if !more {
			return nil
		}
	}
	return nil
}

// TxnAtOrBefore implements storage.TxnSeeker with one reverse seek over
// the t keys.
func (s *Store) TxnAtOrBefore(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.enter(ctx, "transaction at or before"); err != nil {
		return 0, storage.Checksum{}, err
	}
	defer s.opMu.RUnlock()
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte{prefixTxn}})
	defer it.Close()
	it.Seek(txnKey(tid))
	if !it.Valid() {
		return 0, storage.Checksum{}, nil
	}
	item := it.Item()
	found, err := decodeKey9(item.Key(), prefixTxn)
	if err != nil {
		return 0, storage.Checksum{}, fmt.Errorf("badgerstore: transaction at or before %s: %w", tid, err)
	}
	b, err := itemValue(item, "transaction record")
	if err == nil {
		var rec txnRecord
		if rec, err = decodeTxnRecord(b); err == nil {
			return storage.TID(found), rec.Chain, nil
		}
	}
	return 0, storage.Checksum{}, fmt.Errorf("badgerstore: transaction at or before %s: transaction %s: %w", tid, storage.TID(found), err)
}

// TxnAfter implements storage.TxnSeeker with one seek over the t keys.
func (s *Store) TxnAfter(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.enter(ctx, "transaction after"); err != nil {
		return 0, storage.Checksum{}, err
	}
	defer s.opMu.RUnlock()
	if tid == ^storage.TID(0) {
		return 0, storage.Checksum{}, fmt.Errorf("badgerstore: transaction after %s: %w", tid, storage.ErrNotFound)
	}
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	found, rec, err := nextTxn(rtxn, tid+1)
	if err != nil {
		return 0, storage.Checksum{}, fmt.Errorf("badgerstore: transaction after %s: %w", tid, err)
	}
	if found == 0 {
		return 0, storage.Checksum{}, fmt.Errorf("badgerstore: transaction after %s: %w", tid, storage.ErrNotFound)
	}
	return found, rec.Chain, nil
}
