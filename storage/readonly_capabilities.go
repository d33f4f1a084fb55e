package storage

import (
	"context"
	"iter"
)

// The view passes the optional capabilities through: a store without them
// answers as ListObjects, TxnAtOrBefore and TxnAfter do for it.
var (
	_ ObjectLister = (*readOnly)(nil)
	_ TxnSeeker    = (*readOnly)(nil)
)

func (r *readOnly) Objects(ctx context.Context, from, to OID, at TID) iter.Seq2[ObjectState, error] {
	if err := r.check("objects"); err != nil {
		return func(yield func(ObjectState, error) bool) { yield(ObjectState{}, err) }
	}
	return ListObjects(ctx, r.s, from, to, at)
}

func (r *readOnly) TxnAtOrBefore(ctx context.Context, tid TID) (TID, Checksum, error) {
	if err := r.check("transaction at or before"); err != nil {
		return 0, Checksum{}, err
	}
	return TxnAtOrBefore(ctx, r.s, tid)
}

func (r *readOnly) TxnAfter(ctx context.Context, tid TID) (TID, Checksum, error) {
	if err := r.check("transaction after"); err != nil {
		return 0, Checksum{}, err
	}
	return TxnAfter(ctx, r.s, tid)
}
