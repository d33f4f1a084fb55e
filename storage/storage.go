package storage

import (
	"context"
)

// Storage is a ZODB-style transactional object store. Implementations are
// safe for concurrent use. Byte slices returned by reads belong to the
// caller. Byte slices passed to Txn.Store belong to the storage from then
// on: the caller must not modify them, even after Finish returns, because a
// replicating storage may still be sending them to replicas (keeping the
// slice instead of copying it is what lets large objects travel without a
// copy).
type Storage interface {
	// Load returns the current data of oid and its serial (the TID that wrote
	// it). ErrNotFound if the object does not exist; an object stored with
	// 0 bytes exists and loads as empty data.
	Load(ctx context.Context, oid OID) (data []byte, serial TID, err error)

	// LoadBefore returns the revision of oid that was current just before
	// before: the newest revision with TID < before, its TID (start) and the
	// TID of the revision that replaced it, or 0 if it is still current
	// (end). ErrNotFound if there is none.
	LoadBefore(ctx context.Context, oid OID, before TID) (data []byte, start, end TID, err error)

	// History returns up to n revisions of oid, newest first (n <= 0: all).
	// ErrNotFound if the object does not exist.
	History(ctx context.Context, oid OID, n int) ([]Revision, error)

	// LastTransaction returns the TID of the last committed transaction, or 0
	// for an empty store.
	LastTransaction(ctx context.Context) (TID, error)

	// Chain returns the chain checksum of the committed transaction tid
	// (ErrNotFound if tid is not a committed transaction). Chain(ctx, 0) is
	// the zero checksum.
	Chain(ctx context.Context, tid TID) (Checksum, error)

	// NewOID returns an OID never used before in this store.
	NewOID(ctx context.Context) (OID, error)

	// Iterator returns the committed transactions with from <= TID <= to, in
	// TID order (to == 0: up to the last one).
	Iterator(ctx context.Context, from, to TID) (TransactionIterator, error)

	// Pack removes, for every object, the revisions older than its newest
	// revision at or before before. Transaction metadata and chain values
	// are kept.
	Pack(ctx context.Context, before TID) error

	// Begin starts a transaction.
	Begin(ctx context.Context, meta TxnMeta) (Txn, error)

	// Close releases the storage. Transactions still open are aborted.
	Close() error
}

// Txn is one transaction of the two-phase commit. Its methods are called
// from one goroutine at a time.
type Txn interface {
	// Store stages data as the new revision of oid; serial is the revision
	// the caller read (0 for a new object). Conflicts are reported by Vote.
	// Storing an OID again in the same transaction replaces the staged data
	// and serial.
	Store(ctx context.Context, oid OID, serial TID, data []byte) error

	// Vote takes the commit lock (waiting while another transaction holds
	// it, until ctx ends) and validates the transaction: conflicts
	// (*ConflictError), sizes (ErrTooLarge), resources. If Vote fails the
	// transaction is aborted and the lock released. After a successful Vote,
	// Finish does not fail for a logical reason.
	Vote(ctx context.Context) error

	// Finish commits the voted transaction with a new TID, max(now, last+1),
	// makes it durable, releases the commit lock and returns the TID and
	// chain checksum. A transaction that stored nothing commits too: a TID
	// with its metadata and no records.
	Finish(ctx context.Context) (Commit, error)

	// FinishAt is Finish with a TID chosen by the caller: the replication
	// path, where a replica commits with the primary's TID (ZODB's restore).
	// tid must be greater than the last committed TID (ErrTIDOrder). If
	// expect is not the zero Checksum and the transaction's chain at tid
	// would differ from it, nothing is committed and ErrChainMismatch is
	// returned. On either error the transaction stays voted, holding the
	// commit lock, until the caller aborts it.
	FinishAt(ctx context.Context, tid TID, expect Checksum) (Commit, error)

	// Abort discards the transaction and releases the commit lock if it
	// holds it. Aborting a finished or aborted transaction is a no-op.
	Abort(ctx context.Context) error
}

// TransactionIterator walks committed transactions in TID order.
type TransactionIterator interface {
	// Next returns the next transaction, or io.EOF after the last one.
	Next(ctx context.Context) (*Transaction, error)
	// Close releases the iterator.
	Close() error
}
