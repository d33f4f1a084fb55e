// Package primary is the primary node of repld: a storage.Storage that wraps
// a local store and replicates every transaction to the replicas of its gcs
// group, with a sync policy, a persisted registry of replicas and their
// quarantines, and a catch-up service for replicas that join or return.
//
// # Replicating storage
//
// A Primary is itself a storage.Storage, so an application gets replication
// by changing one constructor. Reads go to the local store. A transaction
// with at most 64 KiB of object data reaches the replicas whole, as one
// txn message at its finish (its begin, stores, vote and finish in one),
// and one aborted before that sends nothing. The store that takes a
// transaction past 64 KiB makes it stream: its begin and the stores kept
// so far go out, and from then on each step of the two-phase commit is
// applied locally first and, if it succeeds, broadcast (as wire messages
// cut into fragments by internal/msgstream) before the call returns,
// except Store, which broadcasts first (below):
//
//   - Begin assigns the transaction a seq (from 1, never repeated by one
//     primary process); begin goes out when the transaction streams.
//   - Store refuses data that could not be sent (beyond a wire limit or
//     65535 fragments) with an error wrapping storage.ErrTooLarge before
//     anything is stored anywhere. A small store is copied into the
//     transaction's txn message; a streamed one is multicast and then
//     stored locally, so replicas receive and write a large object while
//     the primary writes it. A local failure fails the transaction: its
//     Vote returns that error and aborts it locally and on the replicas,
//     which never commit what the primary lacks. Streamed data is sent
//     without a copy, so it must stay unmodified until the replicas
//     acknowledged it (gcs keeps references), which is stricter than the
//     storage contract's "until Finish".
//   - Vote votes locally (taking the local commit lock) and, when the
//     transaction streams, multicasts vote.
//   - Finish commits locally with a TID the primary chooses, max(now,
//     last+1), and multicasts finish (or the whole txn message) with the
//     TID and the chain value as soon as the commit is written, before it
//     is durable
//     (storage.DeferredFinisher), so replicas apply and sync it while the
//     local store syncs. Then, outside the commit lock, it waits for the
//     local sync and for the sync policy, so concurrent commits pipeline.
//     In applied mode a commit that finds others finishing waits for its
//     replicas first and for the local sync after: the acknowledgement
//     comes later than the local sync would end, and a round started then
//     covers the commits written meanwhile, so the primary's disk (and a
//     replica's, when they share one) sees fewer syncs.
//     No caller hears of a commit before it is durable locally; a crash
//     of the primary's machine (not just its process, whose writes the
//     operating system keeps) can therefore leave a replica with a
//     transaction that nobody was told of and the restarted primary
//     lacks: that replica is quarantined as divergent at that TID, and
//     promoting the most advanced replica instead loses nothing.
//   - Pack packs locally and multicasts pack, between two finishes.
//
// Finishes and aborts of voted transactions are broadcast in commit order
// (a turnstile with a ticket per vote), although the local store's group
// commit lets Finish calls return in any order: replicas see finishes in TID
// order. Every message carries the primary's epoch, persisted in DataDir.
//
// # Sync policy
//
// Async returns after the local commit; Received waits until K healthy
// replicas acknowledged holding the whole transaction; Applied until K
// healthy replicas committed it durably, so it is readable on them when
// Finish returns. Only healthy (live) replicas count. With fewer than K
// healthy replicas, Block waits up to the timeout and Degrade returns at
// once; either way Status shows degraded and a warning is logged. When the
// policy is not met Finish returns the Commit together with an error
// wrapping ErrNotReplicated: the transaction is committed and durable
// locally and is not rolled back. WithSync overrides the policy for one
// commit.
//
// # Replicas, catch-up and quarantine
//
// A replica joins the group and says hello with its name, epoch, last TID
// and chain value there. A replica quarantined in the registry stays so. A
// replica with a newer epoch, a TID the primary does not have, or another
// chain value at that TID is quarantined as divergent, with a reason naming
// the TID. Otherwise it catches up: a goroutine replays every committed
// transaction after its TID, each whole: as one replay message, or, with
// more than 64 KiB of object data, as a seq-0 begin, stores and finish
// (which carry the data without a copy), until it is near the head;
// then, between two finish broadcasts and with no Begin in progress, it
// replays the rest and sends live [next_seq]. Every
// transaction in flight at that moment is sent to it whole as a replay
// right after its finish, so every transaction reaches every replica whole
// or not at all, with no gap and no duplicate. A replica reporting failure
// is quarantined at once. A replica whose member leaves the view becomes
// disconnected and catches up again from its own last TID when it returns.
//
// The registry (state, last received and applied TID, lag in transactions
// and seconds, quarantine reason, code, TID and time) is persisted as JSON in
// DataDir on every quarantine, every heartbeat interval when it changed, and
// on Close; on Open every replica that is not quarantined starts
// disconnected.
//
// # Limitations
//
// An empty replica gets the same replay from the first transaction (a bulk
// snapshot would be faster). Packed history cannot be replayed with chain
// checks: a replica catching up over packed transactions fails its chain
// check and is quarantined. An operator quarantines a replica with
// QuarantineReplica and lifts a quarantine with ReleaseReplica; restarting
// the replica (release, resync) and promotion are internal/node's.
package primary
