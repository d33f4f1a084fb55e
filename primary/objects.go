package primary

import (
	"context"
	"iter"

	"github.com/repld/repld/storage"
)

// The primary passes the optional read capabilities of its local store
// through, so the admin endpoint can digest and bisect its data.
var (
	_ storage.ObjectLister = (*Primary)(nil)
	_ storage.TxnSeeker    = (*Primary)(nil)
)

// Objects implements storage.ObjectLister from the local store.
func (p *Primary) Objects(ctx context.Context, from, to storage.OID, at storage.TID) iter.Seq2[storage.ObjectState, error] {
	if err := p.checkOpen("objects"); err != nil {
		return func(yield func(storage.ObjectState, error) bool) { yield(storage.ObjectState{}, err) }
	}
	return storage.ListObjects(ctx, p.inner, from, to, at)
}

// TxnAtOrBefore implements storage.TxnSeeker from the local store.
func (p *Primary) TxnAtOrBefore(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := p.checkOpen("transaction at or before"); err != nil {
		return 0, storage.Checksum{}, err
	}
	return storage.TxnAtOrBefore(ctx, p.inner, tid)
}

// TxnAfter implements storage.TxnSeeker from the local store.
func (p *Primary) TxnAfter(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	if err := p.checkOpen("transaction after"); err != nil {
		return 0, storage.Checksum{}, err
	}
	return storage.TxnAfter(ctx, p.inner, tid)
}
