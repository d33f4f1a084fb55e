// Package wire owns the encoding of repld's application messages: the Go
// message types, their CBOR form, and the strict decoder that every message
// from the network passes through.
//
// # Envelope
//
// A message is a CBOR array of two elements, [method, args]: method is a
// text string naming the message kind, args an array holding the kind's
// arguments in the order of its Go struct's fields (structs are encoded
// `cbor:",toarray"`). Encoding is deterministic (RFC 8949 Core
// Deterministic Encoding: shortest heads, definite lengths), so one message
// has exactly one encoding, and golden vectors in the repository's
// testdata/wire directory pin it.
//
// # Messages
//
// From the primary to its replicas (epoch first, see below):
//
//	begin     [epoch, seq, user, description, extension]   Begin
//	store     [epoch, seq, oid, serial, data]              Store (data is the payload)
//	vote      [epoch, seq]                                 Vote
//	finish    [epoch, seq, tid, chain]                     Finish
//	abort     [epoch, seq]                                 Abort
//	pack      [epoch, before]                              Pack
//	heartbeat [epoch, last_tid]                            Heartbeat
//	live      [epoch, next_seq, tid]                       Live
//	replay    [epoch, tid, chain, user, description,       Replay (records are the payload:
//	          extension, records]                          oid ‖ length ‖ data each)
//	txn       [epoch, seq, tid, chain, flags, user,        Txn (records are the payload:
//	          description, extension, records]             oid ‖ serial ‖ length ‖ data each)
//
// From a replica to the primary:
//
//	hello     [node, epoch, last_tid, chain]               Hello
//	received  [tid]                                        Received
//	voted     [seq]                                        Voted (no longer sent; earlier replicas did)
//	applied   [tid]                                        Applied
//	failure   [seq, tid, code, text]                       Failure
//
// Between a storage client and a node's client port (package
// storage/remote and internal/clientserver; each request carries a
// client-chosen id that its answers repeat, see client.go):
//
//	c.load c.loadbefore c.history c.last c.chain c.iterate   reads, [id, ..., at_least]
//	c.newoid c.pack c.role                                   [id, ...]
//	c.begin c.store c.vote c.finish c.finishat c.abort       a transaction, [id, txn, ...]
//	c.votefinish                                             vote, then finish: [id, txn]
//	c.ok c.error c.data c.num c.commit c.roleis              answers
//	c.rev c.txn c.rec                                        items of a streamed answer
//	c.inval   [tid, oids]                                    pushed after each commit
//
// Integers (epoch, seq, oid, serial, tid, code) are unsigned; user,
// description, extension and data are byte strings; node, text and method
// are text strings; chain is a byte string of exactly 32 bytes (Chain).
// toarray needs exact argument counts, so a kind never changes shape: a
// changed kind is a new kind under a new method name. New kinds are Go
// structs implementing Message, registered through Config.Extra or added to
// the built-in table.
//
// # Epochs
//
// Every primary-to-replica message carries the primary's epoch as its first
// argument and implements FromPrimary. Nodes refuse a message whose epoch is
// lower than the highest they have seen, so a deposed primary cannot write
// into its successor's replicas. This package only carries the epoch; the
// nodes enforce the rule.
//
// # Strict decoding
//
// Unmarshal accepts exactly the canonical encoding of a registered kind and
// nothing else. It refuses, with an error wrapping ErrMalformed: truncated
// input, bytes after the message, indefinite lengths, tags, maps, negative
// integers, floats and simple values, non-shortest heads, invalid UTF-8,
// wrong argument counts or types, chain values that are not 32 bytes. It
// refuses unknown methods with ErrUnknownMethod, and anything beyond the
// Config limits (message length, payload length, other byte strings, text
// strings, array elements, nesting) with ErrTooLarge. The whole message is
// checked before any of it is decoded, so a refused message yields nothing.
// Every message that decodes re-encodes to the same bytes. Decoding never
// panics on any input; it is fuzzed (FuzzUnmarshal).
//
// The encoding methods refuse, with the same errors, a message that a codec
// with the same Config would refuse, so a sender learns of it before
// anything is sent. Every node must use the same limits.
//
// # Payloads and aliasing
//
// Object data need not be copied by the codec on its way through a node
// (Marshal copies it once, into its single buffer; the calls below never
// do). A Store's Data (in general, a Payloader's payload) is its last
// argument, so it is the trailing bytes of the encoding:
//
//   - AppendHead and MarshalBuffers return the small head (everything up to
//     and including the payload's byte string head) and the caller's payload
//     slice itself; the two concatenated are Marshal's bytes. The payload
//     must not be modified until the buffers are written.
//   - Unmarshal returns a Store whose Data is a slice of the input buffer:
//     the caller must not modify or reuse that buffer while the message is in
//     use. Data's capacity ends with the message, so appending to it copies.
//     All other byte strings are copied.
//
// A Codec is built once from a Config (NewCodec), is immutable, and is safe
// for concurrent use; the package has no mutable state.
package wire
