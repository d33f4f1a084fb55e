// Package badgerstore is the local, durable storage.Storage: a badger
// database in managed mode, where every badger version is a TID chosen by
// the store. It owns the on-disk layout below and guarantees the
// storage contract: whole transactions of any size, durability before
// Finish returns (unless Config.NoSync), strictly increasing TIDs and
// never-reused OIDs across restarts, and a clear error (wrapping
// ErrCorrupt), never a panic, for bytes on disk it cannot decode.
//
// # Key layout
//
// Every key starts with one byte naming its kind; numbers are 8 bytes
// big-endian, so keys sort in numeric order. Every value carries badger
// UserMeta 1 (the format version), except the reference to a blob file,
// which carries 2 (see Blob files).
//
//	o ‖ oid          object data, or a blob reference; one badger version per revision, the version is its serial (TID)
//	t ‖ tid          chain (32 bytes) ‖ user, description, extension (each a 4-byte length, then the bytes); version tid
//	r ‖ tid          the OIDs the transaction wrote, ascending, 8 bytes each; version tid
//	i ‖ tid          intent: staging nonce (8) ‖ chain (32) of a staged transaction past its commit point
//	s ‖ nonce        staged metadata (a t record with a zero chain) of a staged transaction
//	s ‖ nonce ‖ oid  staged object data, or a blob reference
//	b ‖ file id      oid (8) ‖ tid (8) of the revision whose data the blob file holds; version tid
//	n                the first OID not reserved by NewOID (its own version sequence)
//	p                the pack horizon (its own version sequence)
//
// The last TID is the greatest t key: the transaction record is written
// atomically with each commit, so it needs no separate key (one that
// would gain a badger version per commit).
//
// # Blob files
//
// Object data of at least Config.BlobThreshold bytes (default 1 MiB) is
// kept in a file of its own, written once:
//
//	<Dir>/blobs/<file id>.blob   the data, nothing else; the id is a random 64-bit number, 16 hex digits
//
// The revision's o key then holds a blob reference, UserMeta 2: file id
// (8) ‖ size (8) ‖ SHA-256 of the data (32), the digest the chain covers.
// Every read checks the file's size and SHA-256 against it, so a missing,
// truncated or different file is an error wrapping ErrCorrupt that names
// the OID, the TID and the file; data returned is always a fresh buffer.
// A blob reference is a small inline value, so a transaction whose only
// large values are blob files commits as one badger transaction, its
// data written once, to its file.
//
// Store writes the file (under a new id, created exclusively) while it
// computes the data's digest, then syncs it in the background. On Linux a
// durable store writes around the page cache (O_DIRECT, 1 MiB aligned
// chunks, several in flight, the tail's padding truncated away), so the
// disk works while the data is hashed and the sync has little left to
// do; where O_DIRECT is refused, and on other platforms, it writes
// through the page cache in 4 MiB pieces whose writeback it starts (on
// Linux) as each is written; storing
// the OID again in the transaction removes the file, and so do Abort and
// a failed Vote. Vote waits for the files' syncs and syncs the blobs
// directory once, before it takes the commit lock: the lock is never
// held across a file's sync, and every file is durable before the commit
// point. The commit writes, with the revision's reference, an index key
// b ‖ file id.
//
// Crash safety. A crash before the commit point leaves files no index key
// names: Open removes every file in blobs/ without its index key (and any
// other leftover file), and logs how many. A crash after the commit
// point leaves the commit's files durable, and its index keys written
// (or rewritten by the redo of a staged transaction, which Open runs
// before it looks for orphans). Only a commit's writes name a file, so
// no committed revision can refer to a file that Open removes.
//
// # Reads
//
// Readers read at the published TID: the newest transaction that is
// durable (with NoSync: written). Load is a badger Get at that snapshot;
// LoadBefore(oid, before) walks the versions of o ‖ oid down to the first
// one below before; Iterator walks t keys and reads each record at
// exactly its TID. Objects (the current state of an OID range at a
// snapshot) is one iteration over the range's o keys at the snapshot, and
// TxnAtOrBefore and TxnAfter are one seek over the t keys.
//
// # Commits, durability and group commit
//
// Vote takes the commit lock (a channel, so waiting respects the
// context), checks sizes and conflicts against the newest written
// transaction, and decides how the transaction is written. Finish
// chooses the TID (max(now, last+1)), computes the chain and writes the
// transaction with badger's SyncWrites off, releases the commit lock,
// then waits for a group sync: one sync round shared by every committer
// whose write finished before the round started (the first waiter runs
// it, later arrivals join the next round). A round does what db.Sync does
// and more: it fsyncs the value log files badger rotated since the
// previous round (db.Sync misses them) and the current one, only when a
// write since the previous round may have put data there (most commits
// keep their values inline, so they cost one fsync); then the memtable
// logs badger rotated and the current one. The current files stay open
// between rounds. Only then is the transaction published and Finish
// returns. NewOID reservations and Pack wait for a round the same way.
//
// A committer that would start a round while other transactions hold or
// wait for the commit lock lets the round wait for their writes, for at
// most as long as the previous round took (and 2ms): commits that follow
// one another closely, as when a replica applies a stream or committers
// queue on the commit lock, then share one fsync instead of each starting
// a round alone and making the next one wait for it. The cost is bounded
// extra latency when a transaction holds the lock between Vote and Finish
// for longer.
//
// Store.SyncStats counts the rounds and their time. Rounds run one after
// another, so when their total time nearly fills the elapsed time, the
// disk's syncs bound the commits; commits per round then say how well the
// rounds are shared.
//
// # Restore
//
// Restore writes transactions another store committed (a replica's
// catch-up): each at its TID, its records over whatever is current, its
// chain checked against the one given. Those that fit one badger
// transaction (see below) are queued to badger as separate asynchronous
// badger transactions under one hold of the commit lock, so badger
// writes them together, and they share one group sync; a crash keeps a
// prefix of whole transactions, as each is one badger transaction. The
// others go one by one through Vote and FinishAt. Large records go to
// blob files first, written once and synced together (one directory
// sync) before the commit lock is taken.
//
// # Atomicity of large transactions
//
// A transaction that fits well within one badger transaction's limits
// (count and size, derived from MemTableSize) and whose values all live
// in the LSM tree (below ValueThreshold; blob references always do) is
// written as one badger transaction at its TID: badger replays its write-ahead log by whole
// transactions, so a crash keeps it whole or not at all.
//
// Any other transaction (any number of objects, any total size; with
// NoSync only those too large for one badger transaction) is staged: Vote
// writes its data under s ‖ nonce in as many badger transactions as
// needed and syncs them; Finish writes the intent record i ‖ tid — the
// commit point — and syncs it, then writes the records, the index and
// the transaction record at version tid in chunks, syncs, deletes the
// intent and the staged keys. Readers never see the partial writes
// because the TID is published only after the last chunk is durable. Open
// repeats the writes of every intent it finds (writing the same version
// again is harmless) and deletes staged keys without an intent, so a
// crash anywhere leaves the transaction whole or absent. Value log data is
// synced before the record that points to it, so a power loss cannot
// leave a committed record whose value is missing. Staging writes a
// large transaction's inline data twice (blob files are written once,
// whatever the path: only their references are staged); badger's
// ErrTxnTooBig never reaches a caller.
//
// # Pack
//
// Pack(before) persists the horizon h = min(before, last transaction) and
// makes it badger's discard timestamp, again after every Open (badger
// does not persist it). With NumVersionsToKeep 1, compaction then keeps,
// per key, the newest version at or below h and every later one: exactly
// Pack's semantics. Until compaction gets there, reads filter the
// revisions older than an object's newest revision at or before h, so
// results do not depend on compaction. Transaction records, indexes and
// chain values are separate keys, never superseded, so they are kept.
//
// Blob files of packed revisions are removed once the horizon is
// durable: Pack finds them through the b keys (a revision older than the
// horizon whose object has a newer revision at or before it), deletes
// their index keys and syncs, waits for the readers opening a blob file
// (they hold a shared gate around the open; an open file stays readable
// after its removal), then removes the files. A crash in between leaves
// files without index keys, which Open removes; Open also repeats the
// search, for a crash before the index keys were deleted. A reader that
// finds its file gone checks, under the gate, whether the current horizon
// packed the revision: then the revision went away while it read (Load,
// LoadBefore and History start over, Iterator and Objects leave it out);
// otherwise the file is corrupt.
package badgerstore
