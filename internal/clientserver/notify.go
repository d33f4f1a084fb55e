package clientserver

import (
	"context"
	"iter"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// Notifying returns a view of s that publishes every transaction committed
// through it to h, with the OIDs it stored, once the commit returned. Give
// it to the code that commits (the primary's clients, an embedding
// application, or a replica's apply loop, as its Store) so that every
// connected client learns of every commit. Everything else passes through
// to s (including the optional storage.ObjectLister and storage.TxnSeeker);
// closing the view closes s.
func Notifying(s storage.Storage, h *Hub) storage.Storage { return &notifying{Storage: s, hub: h} }

type notifying struct {
	storage.Storage
	hub *Hub
}

var (
	_ storage.ObjectLister = (*notifying)(nil)
	_ storage.TxnSeeker    = (*notifying)(nil)
)

// Objects passes storage.ObjectLister through to the wrapped store.
func (n *notifying) Objects(ctx context.Context, from, to storage.OID, at storage.TID) iter.Seq2[storage.ObjectState, error] {
	return storage.ListObjects(ctx, n.Storage, from, to, at)
}

// TxnAtOrBefore passes storage.TxnSeeker through to the wrapped store.
func (n *notifying) TxnAtOrBefore(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	return storage.TxnAtOrBefore(ctx, n.Storage, tid)
}

// TxnAfter passes storage.TxnSeeker through to the wrapped store.
func (n *notifying) TxnAfter(ctx context.Context, tid storage.TID) (storage.TID, storage.Checksum, error) {
	return storage.TxnAfter(ctx, n.Storage, tid)
}

func (n *notifying) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	txn, err := n.Storage.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	return &notifyingTxn{Txn: txn, hub: n.hub}, nil
}

// originKey is the context key under which a connection's transactions
// carry the connection, so that the notification of its own commit goes
// out with the commit's answer.
type originKey struct{}

type notifyingTxn struct {
	storage.Txn
	hub  *Hub
	oids []storage.OID
}

func (t *notifyingTxn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := t.Txn.Store(ctx, oid, serial, data); err != nil {
		return err
	}
	t.oids = append(t.oids, oid)
	return nil
}

func (t *notifyingTxn) Finish(ctx context.Context) (storage.Commit, error) {
	c, err := t.Txn.Finish(ctx)
	return t.published(ctx, c, err)
}

func (t *notifyingTxn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	c, err := t.Txn.FinishAt(ctx, tid, expect)
	return t.published(ctx, c, err)
}

// published publishes a commit. A commit returned with an error (a primary
// whose replicas did not acknowledge in time) is committed all the same.
// ctx tells a commit made by a connection's client (see originKey).
func (t *notifyingTxn) published(ctx context.Context, c storage.Commit, err error) (storage.Commit, error) {
	if c.TID != 0 {
		origin, _ := ctx.Value(originKey{}).(*conn)
		t.hub.publish(origin, c.TID, t.oids)
		t.oids = nil
	}
	return c, err
}

// Follow publishes to h every transaction committed to s by someone else,
// until ctx ends: waitFor returns once a TID is committed (a replica's
// WaitFor), then Follow reads the new transactions' OIDs from s's
// iterator. It is the way to notify clients of a store that cannot be
// wrapped with Notifying; it reads every record again, so prefer
// Notifying where possible.
func Follow(ctx context.Context, h *Hub, s storage.Storage, waitFor func(context.Context, storage.TID) error, log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	const minBackoff, maxBackoff = 10 * time.Millisecond, time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		err := waitFor(ctx, h.Last()+1)
		if err == nil {
			err = publishFrom(ctx, h, s, h.Last()+1)
		}
		if err == nil {
			backoff = minBackoff
			continue
		}
		if ctx.Err() != nil {
			return
		}
		log.Debug("following commits", zap.Error(err), zap.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// publishFrom publishes the transactions of s from TID from on.
func publishFrom(ctx context.Context, h *Hub, s storage.Storage, from storage.TID) error {
	for txn, err := range storage.Transactions(ctx, s, from, 0) {
		if err != nil {
			return err
		}
		oids := make([]storage.OID, len(txn.Records))
		for i, r := range txn.Records {
			oids[i] = r.OID
		}
		h.Publish(txn.TID, oids)
	}
	return nil
}
