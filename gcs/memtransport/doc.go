// Package memtransport is an in-memory network for testing code that talks
// over streams, with fault injection. It is the test double for the gcs TCP
// transport: a Layer satisfies gcs.StreamLayer (a net.Listener plus Dial)
// without importing gcs.
//
// # Model
//
// A Network holds any number of nodes, each a Layer listening at a free-form
// address string. A Layer dials another address on the same Network and gets
// a full-duplex byte stream implementing net.Conn: bounded buffers per
// direction (writers block when the peer does not read, like a kernel socket
// buffer), deadlines, and TCP-like Close (the peer reads what was already
// written, then io.EOF; writing to a closed peer fails with ErrPeerClosed).
//
// # Faults
//
// Faults are addressed by node address. Partition, Heal, Isolate, Rejoin and
// CloseLinks work on the unordered pair: they affect every connection between
// the two nodes, whichever side dialed. Delay and SetDropProbability work on
// the directed link from one node to another: they apply to bytes written by
// the first node's end of a connection. A broken connection (partition,
// isolation, CloseLinks, drop, Network.Close) fails every operation on both
// ends with an error wrapping ErrReset, and bytes still in flight are lost,
// as when a real TCP connection is reset. The layer above is expected to
// repair that by reconnecting and retransmitting.
//
// # Determinism and testing/synctest
//
// Drops draw from a seeded random source (Config.Seed or Config.Rand), so a
// test run is repeatable. The package starts no goroutines of its own: every
// wait is on a channel, and deadlines and delays use the time package, so a
// Network created inside a synctest.Test bubble runs on the bubble's fake
// clock — a deadline fires, and delayed bytes become readable, at exactly the
// fake time. Create the Network inside the bubble that uses it.
package memtransport
