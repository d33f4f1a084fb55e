// Package fragment cuts application messages into fragments that fit in one
// group-communication message, and reassembles them strictly on the other
// side. It owns the fragment format (version 1), which is a contract between
// all nodes of a cluster, and imports only the standard library.
//
// # Format
//
// Each fragment is a 5-byte header followed by a body:
//
//	byte 0     version, 1
//	bytes 1–2  offset: index of this fragment, from 0, big-endian uint16
//	bytes 3–4  count: number of fragments in the message, from 1, big-endian uint16
//
// The message is the concatenation of the bodies in offset order. A fragment
// is at most Config.MaxFragment bytes including its header (default 102400,
// the GCS message size limit). Every fragment except the last has a body of
// exactly MaxFragment−5 bytes, and the last body is not empty unless the
// whole message is empty, which is sent as one fragment with count 1 and an
// empty body. So a message of n bytes is always sent as max(1,
// ⌈n/(MaxFragment−5)⌉) fragments and each message has exactly one encoding:
// sender and receiver must use the same MaxFragment. A message needing more
// than 65535 fragments, or larger than Config.MaxMessage, is refused by the
// sender (ErrTooLarge) before anything is split or sent; Splitter.Count lets
// a caller check a size before acting on the message at all.
//
// # Strict reassembly
//
// The header carries no message id, so the fragments of one sender's
// messages must arrive on one FIFO stream without interleaving, and a
// Reassembler serves exactly one such stream. It accepts only the exact
// sequence a Splitter produces: offset 0 starts a message; each next fragment
// has offset+1 and the same count; the message is complete at offset
// count−1. Everything else is a protocol error (errors.Is(err, ErrProtocol)),
// with a specific sentinel and a message giving what was expected and what
// arrived:
//
//   - ErrTruncated: fewer than 5 bytes.
//   - ErrVersion: a version other than 1.
//   - ErrHeader: count 0, or offset ≥ count.
//   - ErrSequence: a gap, a repeat, a changed count, or a fragment with
//     offset > 0 while no message is in progress.
//   - ErrBodySize: a body larger than MaxFragment−5, a non-final body that is
//     not exactly that size, or an empty final body in a message of several
//     fragments.
//   - ErrMessageSize: a message larger than MaxMessage. Because non-final
//     bodies are full, the first fragment's count already proves the message
//     at least (count−1)·(MaxFragment−5)+1 bytes long; such a message is
//     rejected at offset 0, before any memory is reserved for it.
//
// After an error the partial message is discarded (nothing of it is ever
// returned, and the fragment that caused the error belongs to no message),
// and reassembly resumes only at the next fragment with offset 0; fragments
// with a higher offset arriving meanwhile are errors too. A caller that
// replicates state should treat any protocol error as fatal for the stream.
//
// # Copies and ownership
//
// Splitting copies nothing: Splitter.Split returns Fragments, a view that
// produces each Fragment on demand (Len and At, or the iterator All), so
// even a 64 MiB payload costs no allocation to split. A Fragment's Body
// aliases the payload, which must stay unmodified until every fragment has
// been sent; Fragment.Parts gives header and body as separate buffers for a
// vectored send, and Fragment.AppendTo writes them contiguously for callers
// that need one slice.
//
// Reassembly copies each byte at most once. A message of one fragment is
// returned as a view of that fragment's body, so the received buffer must
// stay unmodified while the message is in use. A message of several
// fragments is copied, body by body, into one buffer allocated when the
// first fragment arrives with its final capacity (count·(MaxFragment−5),
// capped by MaxMessage), so it never grows; the caller owns that buffer and
// may hand it back with Reassembler.Recycle once done with it, sparing the
// allocation of the next large message. The Reassembler keeps no reference
// to a fragment after Add returns.
//
// Splitter is an immutable value, safe for concurrent use. A Reassembler
// holds the state of one stream and is used by one goroutine at a time.
package fragment
