// Package remote is the network client of repld: a storage.Storage served
// by a primary (writes) and its replicas (reads) over their client ports
// (`repld primary|replica --client HOST:PORT`, internal/clientserver). It
// passes the same conformance suite as every other store.
//
// # Routing
//
// Begin and the transaction's calls, NewOID and Pack go to the primary:
// the first address of Config.Primary whose node answers the role call as
// "primary" (after a promotion the client finds the new one when it
// reconnects). Reads go to a replica when Config.Replicas lists any,
// round-robin, and carry the newest TID the client has seen or written
// (its own commits, loaded serials, last TIDs, invalidations): a replica
// behind it waits for it for a bounded time or says it is behind, and the
// read goes to the primary. So a client never reads older state than it
// has seen (read-your-writes). After a Pack, reads go to the primary until
// the client has seen a later commit, because until then a replica may not
// have applied the pack.
//
// # Protocol
//
// One connection per node carries every call, pipelined: each request has
// an id, answers come in any order, and small messages share system calls.
// Stores are streamed without waiting; the first refused store of a
// transaction is reported by Vote (as is a store too large to send).
// Transactions implement storage.OneStepCommitter: storage.CommitTxn sends
// vote and finish as one request, which saves a round trip per commit and
// keeps the primary's commit lock off the network. A
// transaction is bound to its connection; the node aborts it if the
// connection drops, and its later calls return ErrDisconnected. Errors the
// node reports keep their kind: errors.Is works for every storage
// sentinel and errors.As finds a *storage.ConflictError with its fields.
// Byte slices returned by reads are the caller's; object data is read into
// one buffer per message and handed over without another copy.
//
// # Cache
//
// Load answers from a bounded LRU cache (Config.CacheObjects and
// CacheBytes). The primary pushes an invalidation (TID and changed OIDs)
// after every commit, which removes those objects; a load whose answer
// raced with an invalidation is not cached, because its data may be older
// than the invalidation. The client's own commits invalidate before Finish
// returns, and the cache is flushed when the primary's connection drops
// (invalidations may be missed while disconnected).
//
// # Failures
//
// Each node's connection is kept up by a goroutine that reconnects with
// backoff (Config.BackoffMin, BackoffMax). While a node is unreachable,
// calls that need it fail at once with an error matching ErrDisconnected,
// which is retryable; calls in flight when a connection drops fail the
// same way. A connection counts as lost from the moment any call fails
// because of it: after that, WaitConnected waits for a new connection.
// Close closes every connection, stops every goroutine, and makes later
// calls return storage.ErrClosed.
package remote
