// Package node runs one repld node in either role, primary or replica, on
// one store and one gcs node, and carries out the operator's control
// operations that change what the node does: quarantine, release, resync,
// promote and follow (the admin control endpoints, replctl's commands).
//
// A Node owns the role it runs (a primary.Primary or a replica.Replica,
// which owns the store) and opens the store through Config.OpenStore each
// time a role starts, so a role switch closes everything of the old role
// before the new one opens on the same data. The gcs node and the admin
// server outlive role switches: the node keeps its gcs listen address and
// the admin server keeps answering, reading the current role's status and
// store through Status and Store.
//
// # Control operations
//
// Operations are serialised. On a replica each restarts the replica role
// (closing the replica aborts every transaction in progress, so nothing
// half-applied survives) with one change in between:
//
//   - Quarantine persists an operator's quarantine marker; the restarted
//     replica applies nothing and reports the quarantine to the primary in
//     its hello, which records it.
//   - Release removes the marker; the replica says hello with its last TID
//     and catches up from there (the primary must have released it first).
//   - Resync also removes the store (Config.RemoveStore) and reopens it
//     empty: the replica catches up from nothing, with its progress in
//     Status (catch_up).
//   - Follow makes the replica follow another primary (gcs address); a
//     primary asked to follow steps down to a replica of that primary.
//   - Promote closes the replica after its last pipelined finish and opens
//     a primary on the same store with the replica's epoch + 1 (at least
//     2), so the replicas that follow it accept it and refuse the old
//     primary's lower epoch. Its answer names the gcs address the other
//     replicas are to follow (listen).
//
// On a primary, QuarantineReplica and ReleaseReplica change the replica's
// registry entry (see primary.Primary.QuarantineReplica for what a primary
// can and cannot do to a live replica).
//
// # Guarantees and limits
//
// Every transaction a replica acknowledged as applied is durable in its
// store, so promoting the replica with the highest last TID keeps every
// transaction a commit in applied mode waited for; promote takes no vote,
// so choosing that replica is the operator's part (replctl status shows
// the last TIDs). If reopening the store or the role fails, the node is
// left without a role: Status reports the error and the next control
// operation tries again.
package node
