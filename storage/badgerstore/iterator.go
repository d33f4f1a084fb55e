package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"

	"github.com/repld/repld/storage"
)

// Iterator implements storage.Storage. It walks the transactions
// published when it was created; it holds no badger resources between
// calls to Next.
func (s *Store) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	if err := s.enter(ctx, "iterator"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	snap := storage.TID(s.published.Load())
	if to == 0 || to > snap {
		to = snap
	}
	return &txnIterator{s: s, next: from, to: to, snap: snap}, nil
}

type txnIterator struct {
	s        *Store
	next, to storage.TID
	snap     storage.TID
	done     bool
}

// Next implements storage.TransactionIterator.
func (it *txnIterator) Next(ctx context.Context) (*storage.Transaction, error) {
	if it.done || it.next > it.to {
		return nil, io.EOF
	}
	s := it.s
	if err := s.enter(ctx, "iterator next"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	rtxn := s.db.NewTransactionAt(uint64(it.snap), false)
	defer rtxn.Discard()

	tid, rec, err := nextTxn(rtxn, it.next)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: iterator after %s: %w", it.next, err)
	}
	if tid == 0 || tid > it.to {
		it.done = true
		return nil, io.EOF
	}
	if tid == ^storage.TID(0) {
		it.done = true
	} else {
		it.next = tid + 1
	}
	records, err := s.records(rtxn, tid)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: iterator at %s: %w", tid, err)
	}
	return &storage.Transaction{TID: tid, Meta: rec.Meta, Chain: rec.Chain, Records: records}, nil
}

// nextTxn returns the first transaction at or after from (tid 0: none).
func nextTxn(rtxn *badger.Txn, from storage.TID) (storage.TID, txnRecord, error) {
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixTxn}})
	defer it.Close()
	it.Seek(txnKey(from))
	if !it.Valid() {
		return 0, txnRecord{}, nil
	}
	item := it.Item()
	tid, err := decodeKey9(item.Key(), prefixTxn)
	if err != nil {
		return 0, txnRecord{}, err
	}
	b, err := itemValue(item, "transaction record")
	if err != nil {
		return 0, txnRecord{}, err
	}
	rec, err := decodeTxnRecord(b)
	if err != nil {
		return 0, txnRecord{}, fmt.Errorf("transaction %s: %w", storage.TID(tid), err)
	}
	return storage.TID(tid), rec, nil
}

// records returns the records of transaction tid that Pack kept.
func (s *Store) records(rtxn *badger.Txn, tid storage.TID) ([]storage.Record, error) {
	item, err := rtxn.Get(recordsKey(tid))
	if err != nil {
		return nil, fmt.Errorf("read record index: %w", err)
	}
	b, err := itemValue(item, "record index")
	if err != nil {
		return nil, err
	}
	oids, err := decodeOIDs(b)
	if err != nil {
		return nil, err
	}
	horizon := storage.TID(s.horizon.Load())
	var packed *badger.Txn
	if tid < horizon {
		packed = s.db.NewTransactionAt(uint64(horizon), false)
		defer packed.Discard()
	}
	at := s.db.NewTransactionAt(uint64(tid), false)
	defer at.Discard()
	records := make([]storage.Record, 0, len(oids))
	for _, oid := range oids {
		if packed != nil {
			// Pack removed this revision if a newer one is at or before
			// the horizon.
			item, err := packed.Get(objectKey(oid))
			if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return nil, fmt.Errorf("read %s: %w", oid, err)
			}
			if err == nil && storage.TID(item.Version()) > tid {
				continue
			}
		}
		item, err := at.Get(objectKey(oid))
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", oid, tid, err)
		}
		if v := storage.TID(item.Version()); v != tid {
			return nil, fmt.Errorf("%w: record index of %s lists %s, whose revision there is %s", ErrCorrupt, tid, oid, v)
		}
		data, err := s.objectValue(item, oid)
		if errors.Is(err, errBlobPacked) {
			continue // packed since the horizon was read
		}
		if err != nil {
			return nil, err
		}
		records = append(records, storage.Record{OID: oid, Data: data})
	}
	return records, nil
}

// Close implements storage.TransactionIterator.
func (it *txnIterator) Close() error {
	it.done = true
	return nil
}
