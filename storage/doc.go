// Package storage defines repld's object store: the Storage interface that
// every backend implements (the local Badger store, the in-memory store, the
// replicating primary, a replica's read-only view and the network client),
// the OID and TID types, the TID clock, the chain checksum and the errors
// callers branch on.
//
// The semantics mirror ZODB's IStorage and IMVCCStorage:
//
//   - Objects are opaque byte strings named by an OID. Every committed
//     revision of an object is named by the TID of the transaction that
//     wrote it (its serial).
//   - Writes happen in a two-phase commit: Begin, any number of Store calls,
//     Vote (all validation: conflicts, sizes, resources), then Finish, or
//     Abort at any point before Finish. Many transactions may be in the store
//     phase at once; only one may be between Vote and Finish (the commit
//     lock), so Vote blocks while another transaction holds it. After a
//     successful Vote, Finish does not fail for a logical reason.
//   - Store with a serial that is not the object's current TID is a
//     conflict, reported by Vote as a *ConflictError (errors.Is(err,
//     ErrConflict)). Serial 0 means "new object".
//   - TIDs are strictly increasing, in ZODB's TimeStamp layout, and a new
//     TID is max(now, last+1). The replication path commits with a TID
//     chosen elsewhere (Txn.FinishAt, ZODB's restore); a replica never
//     generates TIDs of its own.
//   - Every committed transaction has a chain checksum (see NextChain), a
//     contract shared by every node and every version: two stores that agree
//     on the chain at a TID agree on all history up to it.
//   - Pack(before) keeps, for every object, its newest revision at or before
//     before and every later one; older revisions are gone afterwards (reads
//     that would have returned them report ErrNotFound). Transaction
//     metadata and chain values are kept for every TID.
//
// Two optional capabilities serve comparing nodes: ObjectLister (the
// current state of an OID range at a snapshot, in one pass) and TxnSeeker
// (the transaction next to a TID, for bisecting histories). The local
// stores, the read-only view and the primary have both; ListObjects,
// TxnAtOrBefore and TxnAfter work on any Storage.
//
// Two optional capabilities of a Txn serve commit speed: OneStepCommitter
// (vote and finish in one step, so a network client holds the commit lock
// for no round trip; CommitTxn uses it where it exists) and
// DeferredFinisher (a commit written and ordered before it is durable, so
// a replicating primary sends it to its replicas while it syncs, and a
// replica writes its next transaction while the last one syncs;
// FinishAtDeferred falls back to FinishAt).
package storage
