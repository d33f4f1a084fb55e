package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/repld/repld/storage"
)

// Restore writes transactions committed by another store, in TID order,
// each at its TID and checked against its chain value; their records
// replace whatever is current, since a replayed transaction carries no
// serials (the chain check proves the histories agree). It is the fast
// path of a replica's catch-up: the transactions that fit one badger
// transaction are written together, under one hold of the commit lock,
// and share one sync; the others go through Begin, Vote and FinishAt.
// Each transaction stays atomic on its own, so a crash keeps a prefix of
// whole transactions. Restore returns how many of txns are durable: all
// of them, or those before the one its error is about.
//
// Large records go to blob files, written once and synced together before
// the commit lock is taken; the files of the transactions not restored
// are removed.
func (s *Store) Restore(ctx context.Context, txns []storage.Transaction) (int, error) {
	return s.restore(ctx, txns, false)
}

// RestoreDeferred is Restore that returns once the transactions are
// written, in order, before they are durable: wait returns when the n
// transactions written are durable, or the error that keeps them from
// being durable; readers may not see them before then. A replica writes
// the next transactions while the sync of these runs.
func (s *Store) RestoreDeferred(ctx context.Context, txns []storage.Transaction) (n int, wait func() error, err error) {
	n, err = s.restore(ctx, txns, true)
	if n == 0 {
		return n, func() error { return nil }, err
	}
	last := txns[n-1].TID
	return n, func() error {
		if err := s.committedAt(last); err != nil {
			return fmt.Errorf("badgerstore: restore up to %s: %w", last, err)
		}
		return nil
	}, err
}

// restore is Restore, or, if deferSync is set, RestoreDeferred without
// its wait: the transactions it counts are written, not yet durable.
func (s *Store) restore(ctx context.Context, txns []storage.Transaction, deferSync bool) (int, error) {
	prepared, err := s.prepareRestore(ctx, txns)
	if err != nil {
		return 0, err
	}
	done := 0
	defer func() { s.dropRestoreBlobs(prepared[done:]) }()
	for done < len(txns) {
		n, err := s.restoreBatch(ctx, txns[done:], prepared[done:], deferSync)
		done += n
		if err != nil {
			return done, err
		}
		if done < len(txns) && n == 0 { // does not fit one badger transaction
			if err := s.restoreOne(ctx, txns[done], prepared[done]); err != nil {
				return done, err
			}
			done++
		}
	}
	return done, nil
}

// prepareRestore turns txns into transactions of s, writing the blob
// files of their large records and making them durable with one
// directory sync.
func (s *Store) prepareRestore(ctx context.Context, txns []storage.Transaction) ([]*txn, error) {
	if err := s.enter(ctx, "restore"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	prepared := make([]*txn, 0, len(txns))
	var recs []*record
	for _, tx := range txns {
		t, err := restoreTxn(s, tx)
		if err == nil {
			prepared = append(prepared, t)
			recs = append(recs, t.records()...)
		} else {
			t.dropBlobs()
		}
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			for _, t := range prepared {
				t.dropBlobs()
			}
			return nil, fmt.Errorf("badgerstore: restore at %s: %w", tx.TID, err)
		}
	}
	if err := s.syncBlobs(recs); err != nil {
		for _, t := range prepared {
			t.dropBlobs()
		}
		return nil, fmt.Errorf("badgerstore: restore: %w", err)
	}
	for _, t := range prepared {
		t.blobsSynced = true
	}
	return prepared, nil
}

// dropRestoreBlobs removes the blob files of transactions Restore did
// not commit. After a failure that leaves the store's state unknown
// (some may be written), it leaves them to the next Open.
func (s *Store) dropRestoreBlobs(txns []*txn) {
	s.opMu.RLock()
	defer s.opMu.RUnlock()
	if s.closed.Load() || s.failed.Load() != nil {
		return
	}
	for _, t := range txns {
		t.dropBlobs()
	}
}

// restoreBatch writes the leading transactions of txns that each fit one
// badger transaction, waits until they are durable (unless deferSync is
// set) and returns how many it wrote, with the error of the one that
// stopped it, if any.
func (s *Store) restoreBatch(ctx context.Context, txns []storage.Transaction, prepared []*txn, deferSync bool) (int, error) {
	if err := s.enter(ctx, "restore"); err != nil {
		return 0, err
	}
	defer s.opMu.RUnlock()
	s.syncer.enqueue()
	select {
	case s.commitLock <- struct{}{}:
	case <-ctx.Done():
		s.syncer.dequeue()
		return 0, fmt.Errorf("badgerstore: restore: waiting for the commit lock: %w", ctx.Err())
	case <-s.closing:
		s.syncer.dequeue()
		return 0, fmt.Errorf("badgerstore: restore: %w", storage.ErrClosed)
	}
	last, chain := storage.TID(s.lastWritten.Load()), s.lastChain
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		writeErr error
		stop     error
		maxOID   storage.OID
		n        int
	)
	for i, tx := range txns {
		t := prepared[i]
		if !t.fitsOneBatch() {
			break
		}
		if tx.TID <= last {
			stop = fmt.Errorf("badgerstore: restore at %s: last transaction is %s: %w", tx.TID, last, storage.ErrTIDOrder)
			break
		}
		next := storage.NextChain(chain, tx.TID, tx.Meta, t.digests())
		if next != tx.Chain {
			stop = fmt.Errorf("badgerstore: restore at %s: chain %s, expected %s: %w", tx.TID, next, tx.Chain, storage.ErrChainMismatch)
			break
		}
		w, err := t.batch(tx.TID, next)
		if err != nil {
			stop = fmt.Errorf("badgerstore: restore at %s: %w", tx.TID, err)
			break
		}
		// Asynchronous commits: badger writes the queued transactions
		// together, in the order they were sent.
		wg.Add(1)
		_ = w.CommitAt(uint64(tx.TID), func(err error) {
			if err != nil {
				mu.Lock()
				writeErr = errors.Join(writeErr, err)
				mu.Unlock()
			}
			wg.Done()
		})
		last, chain = tx.TID, next
		if len(t.oids) > 0 {
			maxOID = max(maxOID, t.oids[len(t.oids)-1])
		}
		n++
	}
	wg.Wait()
	if s.cfg.NoSync && n > 0 {
		s.vlogDirty.Store(true) // only NoSync puts values in the value log here
	}
	if writeErr != nil {
		// Some of the batch may be written: only Open knows which.
		err := fmt.Errorf("badgerstore: restore: %w", writeErr)
		s.fail(err)
		<-s.commitLock
		s.syncer.dequeue()
		return 0, err
	}
	if n > 0 {
		s.lastChain = chain
		s.lastWritten.Store(uint64(last))
		s.oidMu.Lock()
		s.bumpOID(maxOID)
		s.oidMu.Unlock()
		if s.cfg.NoSync {
			s.publish(uint64(last))
		}
	}
	<-s.commitLock
	s.syncer.dequeue()
	if n > 0 && !deferSync {
		if err := s.committed(); err != nil {
			return 0, fmt.Errorf("badgerstore: restore up to %s: %w", last, err)
		}
	}
	return n, stop
}

// restoreTxn returns tx as a transaction of s with its OIDs sorted, for
// fitsOneBatch and batch, its large records written to blob files (not
// yet synced). On error, the files written so far are t's.
func restoreTxn(s *Store, tx storage.Transaction) (*txn, error) {
	t := &txn{s: s, meta: tx.Meta, recs: make(map[storage.OID]*record, len(tx.Records))}
	for _, rec := range tx.Records {
		r, err := s.newRecord(rec.OID, 0, rec.Data)
		if err != nil {
			return t, fmt.Errorf("%s: %w", rec.OID, err)
		}
		if old := t.recs[rec.OID]; old != nil && old.blob != nil {
			old.waitSynced()
			s.removeBlobs([]uint64{old.blob.id})
		}
		t.recs[rec.OID] = r
	}
	t.sortOIDs()
	return t, nil
}

// batch returns the badger transaction that writes t at tid, not yet
// committed: its records (blob references for blob files, with their
// index keys), its record index and its transaction record.
func (t *txn) batch(tid storage.TID, chain storage.Checksum) (*badger.Txn, error) {
	w := t.s.db.NewTransactionAt(math.MaxUint64, true)
	set := func(k, v []byte, meta byte) error {
		return w.SetEntry(badger.NewEntry(k, v).WithMeta(meta))
	}
	err := func() error {
		for i, oid := range t.oids {
			r := t.recs[oid]
			if r.blob != nil {
				if err := set(blobIndexKey(r.blob.id), encodeBlobIndex(oid, tid), formatV1); err != nil {
					return err
				}
			}
			v, meta := r.value()
			if err := set(t.objectKey(i), v, meta); err != nil {
				return err
			}
		}
		// The record index and the transaction record with their keys
		// share one buffer: badger copies what it commits.
		rec := txnRecord{Chain: chain, Meta: t.meta}
		b := make([]byte, 0, 2*9+8*len(t.oids)+txnRecordLen(t.meta))
		b = appendKey9(b, prefixRecords, uint64(tid))
		b = appendOIDs(b, t.oids)
		b = appendKey9(b, prefixTxn, uint64(tid))
		b = appendTxnRecord(b, rec)
		oidsEnd, txnKeyEnd := 9+8*len(t.oids), 2*9+8*len(t.oids)
		if err := set(b[:9:9], b[9:oidsEnd:oidsEnd], formatV1); err != nil {
			return err
		}
		return set(b[oidsEnd:txnKeyEnd:txnKeyEnd], b[txnKeyEnd:], formatV1)
	}()
	if err != nil {
		w.Discard()
		return nil, err
	}
	return w, nil
}

// restoreOne restores one prepared transaction through Vote and
// FinishAt, storing each record over the current revision.
func (s *Store) restoreOne(ctx context.Context, tx storage.Transaction, t *txn) error {
	if err := s.enter(ctx, "restore"); err != nil {
		return err
	}
	for oid, r := range t.recs {
		serial, err := s.currentSerial(oid)
		if err != nil {
			s.opMu.RUnlock()
			return fmt.Errorf("badgerstore: restore at %s: %w", tx.TID, err)
		}
		r.serial = serial
	}
	s.opMu.RUnlock()
	if err := t.Vote(ctx); err != nil {
		return fmt.Errorf("badgerstore: restore at %s: %w", tx.TID, err)
	}
	if _, err := t.FinishAt(ctx, tx.TID, tx.Chain); err != nil {
		t.Abort(context.WithoutCancel(ctx))
		if !errors.Is(err, storage.ErrChainMismatch) && !errors.Is(err, storage.ErrTIDOrder) {
			// The commit may be written: its files are the next Open's
			// to judge, not Restore's to remove.
			for _, r := range t.recs {
				r.blob = nil
			}
		}
		return err
	}
	return nil
}

// currentSerial returns the TID of oid's last written revision, 0 if it
// has none.
func (s *Store) currentSerial(oid storage.OID) (storage.TID, error) {
	rtxn := s.db.NewTransactionAt(s.lastWritten.Load(), false)
	defer rtxn.Discard()
	item, err := rtxn.Get(objectKey(oid))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("read %s: %w", oid, err)
	}
	return storage.TID(item.Version()), nil
}
