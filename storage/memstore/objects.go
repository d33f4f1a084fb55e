package memstore

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"sort"

	"github.com/repld/repld/storage"
)

var (
	_ storage.ObjectLister = (*Store)(nil)
	_ storage.TxnSeeker    = (*Store)(nil)
)

// Objects implements storage.ObjectLister. It collects the range under
// the read lock (the map has no order, so that is O(objects) per call) and
// yields after releasing it; committed data is never modified, so it is
// yielded without a copy.
func (s *Store) Objects(ctx context.Context, from, to storage.OID, at storage.TID) iter.Seq2[storage.ObjectState, error] {
	return func(yield func(storage.ObjectState, error) bool) {
		if err := s.readLock(ctx, "objects"); err != nil {
			yield(storage.ObjectState{}, err)
			return
		}
		var states []storage.ObjectState
		for oid, revs := range s.objects {
			if oid < from || oid > to {
				continue
			}
			// revs is ascending and Pack dropped the revisions it removed,
			// so the one found is exactly what LoadBefore(oid, at+1) reads.
			i := sort.Search(len(revs), func(i int) bool { return revs[i].tid > at })
			if i > 0 {
				states = append(states, storage.ObjectState{OID: oid, Serial: revs[i-1].tid, Data: revs[i-1].data})
			}
		}
		s.mu.RUnlock()
		slices.SortFunc(states, func(a, b storage.ObjectState) int { return cmp.Compare(a.OID, b.OID) })
		for i, st := range states {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					yield(storage.ObjectState{}, fmt.Errorf("memstore: objects: %w", err))
					return
				}
			}
			if !yield(st, nil) {
				return
			}
		}
	}
}

// TxnAtOrBefore implements storage.TxnSeeker.
func (s *Store) TxnAtOrBefore(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.readLock(ctx, "transaction at or before"); err != nil {
		return 0, storage.Checksum{}, err
	}
	defer s.mu.RUnlock()
	i := sort.Search(len(s.txns), func(i int) bool { return s.txns[i].tid > tid })
	if i == 0 {
		return 0, storage.Checksum{}, nil
	}
	return s.txns[i-1].tid, s.txns[i-1].chain, nil
}

// TxnAfter implements storage.TxnSeeker.
func (s *Store) TxnAfter(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := s.readLock(ctx, "transaction after"); err != nil {
		return 0, storage.Checksum{}, err
	}
	defer s.mu.RUnlock()
	i := sort.Search(len(s.txns), func(i int) bool { return s.txns[i].tid > tid })
	if i == len(s.txns) {
		return 0, storage.Checksum{}, fmt.Errorf("memstore: transaction after %s: %w", tid, storage.ErrNotFound)
	}
	return s.txns[i].tid, s.txns[i].chain, nil
}
