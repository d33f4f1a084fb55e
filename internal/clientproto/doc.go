// Package clientproto is the transport of repld's client protocol, shared
// by the client (storage/remote) and the server (internal/clientserver):
// frames, a coalescing frame writer, and the mapping between storage errors
// and the protocol's error codes. The messages themselves are wire's client
// kinds (wire.CLoad ... wire.CInvalidate).
//
// # Frames
//
// A connection carries frames in both directions. A frame is a 4-byte
// big-endian length n, 1 <= n <= the codec's MaxMessageLen, then n bytes:
// one wire message. ReadFrame is strict (an empty or oversized frame is an
// error wrapping ErrFrame, and a truncated one ends the connection), reads
// into a fresh buffer per frame so decoded payloads may alias it, and never
// reads ahead, so a bad length never makes it buffer without bound. It is
// fuzzed together with the decoder (FuzzFrames).
//
// # Writing
//
// A Writer queues encoded frames and writes them from its own goroutine
// with one vectored write per batch, so small messages sent close together
// share system calls and object data goes from the caller's slice to the
// socket without a copy. A message sent to many peers is encoded once
// (EncodeFrame) and queued on each Writer (SendFrame, HoldFrame). Send
// never blocks on the network: a peer that does not read makes the queue
// pass its bound, Send fails with ErrQueueFull, and the owner drops the
// connection.
//
// # Errors
//
// ErrorMessage turns a storage error into a wire.CError and Error turns it
// back into an error for which errors.Is matches the same storage sentinel
// (and errors.As finds a *storage.ConflictError with its fields).
package clientproto
