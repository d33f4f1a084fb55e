// Package clientserver serves repld's client protocol (see wire's client
// kinds and internal/clientproto) on a node's client port: a primary serves
// its replicating storage read-write, a replica its read-only view.
//
// # Requests
//
// Each connection has one reader goroutine. Reads (load, history, iterate,
// ...) run concurrently, up to Config.MaxInFlight per connection, and
// answer in any order; each carries the client's request id. A transaction
// is bound to its connection and runs its requests in order on a goroutine
// of its own, because a vote may wait for the commit lock while the
// connection's other requests go on; a connection keeps such goroutines
// waiting between transactions (as many as it recently had transactions
// open, up to a bound) rather than start one per transaction. A pipelined
// begin (request id 0) and the stores after it are only queued until the
// transaction's first request that is answered (or until the queue is
// full), so the goroutine is woken once for all of them rather than for
// each. Stores are not answered: the first
// failing store of a transaction is reported by its vote, so a client
// streams its stores without a round trip each. A one-step commit
// (c.votefinish) votes and, if the vote succeeded, finishes at once, so
// the commit lock is never held while the node waits for the client; a
// failed vote answers it as it would a vote, and the transaction is over.
// When a connection ends for
// any reason, its open transactions are aborted (releasing the commit lock
// a voted one holds).
//
// A read carries the oldest last TID the client accepts; a node that is
// behind waits for it up to Config.MaxWait and then answers
// ClientErrBehind, so the client reads from the primary instead. Iteration
// is paged (Config.PageTxns, Config.PageBytes) and stateless on the server.
//
// # Invalidations
//
// A Hub announces every commit of the store to every connection as an
// invalidation (TID and changed OIDs), and tracks the last TID that reads
// wait for. Commits made through the server are announced by the server
// itself. Commits made elsewhere must reach the Hub too: wrap the store an
// embedding application or a replica's apply loop commits through with
// Notifying, or, for a store that cannot be wrapped, run Follow. The
// invalidation of a client's own commit goes out in the same write as the
// commit's answer, just before it. An invalidation is encoded once for
// every connection, and each connection's writer sends those queued
// meanwhile in one write. The answer to a commit on a connection with
// other transactions open is left to the connection's writer, so that
// the answers of commits finished close together share a write too.
//
// # Guarantees
//
// A malformed or unexpected request is answered with ClientErrProtocol and
// the connection is closed; nothing of it is applied. A client cannot make
// the node buffer without bound or stall commits: answers wait for room in
// a bounded send queue (Config.MaxQueued), every write is bounded
// (Config.WriteTimeout, after which the client is disconnected), and
// invalidations are only queued by the committing goroutine, never
// written by it; a client whose queue has no room for one is
// disconnected (it reconnects and flushes its cache).
package clientserver
