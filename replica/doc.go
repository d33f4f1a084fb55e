// Package replica is the replica node of repld: it joins the primary's
// group, follows the replication stream into a local store with the
// primary's TIDs, acknowledges what it received and applied, quarantines
// itself on any failure, and serves reads from the local store.
//
// # Stream
//
// After joining, the replica unicasts hello [node, epoch, last_tid, chain]
// to the primary (the group's coordinator) and then applies, in stream
// order:
//
//   - Replays: whole transactions with seq 0 (begin, stores, finish, no
//     vote; or one replay message, applied as those would be, its
//     records decoded whole before any is applied), which catch it up
//     from its last TID. A replayed store carries
//     no serial the replica can use; it replaces whatever revision is
//     current locally, and the chain check at finish proves the histories
//     agree. A store with a Restore method (badgerstore) takes finished
//     replays in batches: they collect until a batch bound, until no
//     message is waiting, or until a message other than a replay or
//     heartbeat arrives, and are then written together with one sync,
//     each transaction atomic and chain-checked on its own, and
//     acknowledged applied with the last TID; where the store can defer
//     the sync (RestoreDeferred), the next batch is written while it
//     runs. Otherwise replays pipeline
//     like live finishes; the replica remembers which objects the
//     replays in the pipeline stored, so it need not wait for them to be
//     durable to know the current serial of the next replayed store.
//   - live [epoch, next_seq, tid]: catch-up is over at tid (which must be
//     the replica's last TID). From then on live transactions with seq >=
//     next_seq are applied too, kept apart by seq; a message for a seq below
//     next_seq whose begin the replica never saw is ignored (the primary
//     replays that transaction whole); any other message out of sequence is
//     a protocol failure. Before live, live messages are ignored.
//   - begin → local Begin; store → Store; vote → recorded, not
//     acknowledged (the local commit lock is not taken, because the votes
//     of later transactions may precede the finish of an earlier one);
//     finish [tid, chain] → acknowledge received, then Vote and
//     FinishAt(tid, chain), then acknowledge applied; abort → Abort; pack
//     → Pack (once live); heartbeat → the primary's last TID, for the lag.
//   - txn: a whole live transaction in one message (the primary's usual
//     form of a small one), its records decoded whole before any is
//     applied; it is acknowledged received at once only if it asks for
//     that (its commit waits for it), otherwise applied will do. Over a
//     store with a Restore method it joins the batch of the restorer like
//     a replay: consecutive ones are written together
//     with one sync, each checked against its chain value (which covers
//     the whole history before it, so it also catches objects that differ
//     from the primary's); otherwise it is applied as its begin, stores,
//     vote and finish would be.
//
// A received acknowledgement goes out at once when no message is waiting;
// while messages keep arriving, only the newest is kept (it covers every
// earlier TID) and sent at the next pause or after a bounded number of
// finishes. Failure reports go out at once. Applied acknowledgements go
// out as transactions become durable, coalesced: one that arrives while
// another is being sent is folded into the next send, which carries only
// the highest TID (it acknowledges every one before it).
//
// # Epochs
//
// Every message from the primary carries its epoch. A lower epoch than the
// replica's is refused (logged, counted, not applied); a higher one is
// persisted in DataDir before anything of it is applied (a promoted
// primary).
//
// # Quarantine
//
// Any local failure — a storage error, a chain mismatch, a TID out of order,
// a message out of sequence, a fragment or decoding error — aborts every
// transaction in progress, persists a quarantine marker (QuarantineFile,
// JSON, fsynced) with the reason, code, seq, TID and time, reports failure
// [seq, tid, code, text] to the primary, and stops applying; the replica
// stays in the group and keeps serving reads and status. A replica that
// starts with a marker is quarantined from the start: it says hello and
// repeats its failure so the primary knows, and applies nothing. Only
// removing the marker (ClearQuarantine, on a stopped replica) releases it;
// MarkQuarantined writes an operator's marker the same way.
//
// # Sessions
//
// When the primary is unreachable the replica retries joining with
// backoff. A gcs notice that messages may have been lost (eviction, falling
// behind, removal) or a new group ends the session: transactions in
// progress are aborted and the replica says hello again, catching up from
// what it has. The apply logic is a deterministic state machine (core)
// without goroutines or network, driven by one goroutine.
//
// # Reads
//
// ReadView is storage.ReadOnly over the local store: every read, and
// storage.ErrReadOnly for every write. WaitFor returns once a TID is
// applied.
package replica
