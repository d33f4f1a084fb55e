// Package memstore is an in-memory storage.Storage: the reference
// implementation of the semantics documented in package storage, against
// which the conformance suite in storage/storagetest is checked, and a fast
// store for tests of the packages built on top of storage.
//
// It owns nothing but memory. Guarantees:
//
//   - Every committed revision of every object is kept until Pack removes
//     it; Pack removes exactly the revisions the storage contract says, and
//     they are gone afterwards (reads report storage.ErrNotFound, iterators
//     omit them). Transaction metadata and chain values are kept forever.
//   - One transaction at a time holds the commit lock, from a successful
//     Vote to Finish, FinishAt or Abort. Vote waits for it on a channel, so a
//     waiting Vote gives up when its context ends or the store is closed.
//   - Finish assigns storage.NextTID(Config.Now(), last); FinishAt commits
//     with the caller's TID. NewOID never returns an OID handed out or
//     written before, including OIDs written through FinishAt.
//   - Data is copied on the way in (Txn.Store) and on the way out (every
//     read), so no caller can change stored data through a slice.
//   - An Iterator sees the transactions committed when it was created, as
//     they were then, whatever commits or packs happen while it runs.
//   - After Close every method reports storage.ErrClosed and open
//     transactions are aborted.
//
// Nothing is persisted: Close discards everything.
package memstore
