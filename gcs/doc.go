// Package gcs is daemonless group communication: named groups whose members
// join and leave at run time, membership views, reliable FIFO multicast,
// unicast, and sends from non-members, over any StreamLayer (TCP with
// optional mutual TLS in gcs/tcptransport, an in-memory network with fault
// injection in gcs/memtransport). It imports only the standard library.
//
// # Model
//
// A Node is one participant; a process may run any number of them. Nodes
// have no package-level state, are safe for concurrent use, and Close stops
// every goroutine they started.
//
// The node that creates a group (Node.Create) is its coordinator: it admits
// members, decides views and sequences everything. A member needs only the
// coordinator's address to join (Node.Join); no node is configured with a
// list of members. Every member has one connection to the coordinator,
// carrying a reliable session in each direction. A member's multicast goes to
// the coordinator, which relays it into every other member's stream tagged
// with its origin; unicasts between members are relayed the same way. So
// the coordinator's messages reach members in one hop and members' messages
// in two.
//
// The group lives as long as its coordinator. When the coordinator ends the
// group (Group.Leave or Close on its handle), members get an ErrGroupClosed
// notice and their handles close. When the coordinator is unreachable
// (crashed, partitioned, its Node closed), members report ErrCoordinatorLost
// after FailureTimeout and keep trying to reconnect in the background: they
// never hang silently, and the application decides whether to wait or give
// up. A coordinator that comes back as a new process does not know old
// sessions: members are told ErrRemoved and join afresh. (For repld the
// primary is the coordinator; a promotion creates a new group.)
//
// # Guarantees
//
//   - FIFO without gap or duplicate: each sender's messages reach every
//     member that stays in the view in the order sent, exactly once, across
//     dropped and re-established connections. Each direction of a session
//     numbers its messages; the receiver acknowledges cumulatively; the
//     sender keeps what is unacknowledged and, when the member reconnects
//     (with backoff and jitter) presenting its session id and the last
//     number it received, resends from there.
//   - Views: every membership change (join, leave, failure, eviction) makes
//     a view with the next id, queued in every member's stream at the same
//     point relative to all messages, since the coordinator sequences both
//     under one lock. Every member sees the same sequence of views from the
//     one that admitted it, and the same messages between two views.
//   - Never a silent gap: a member that lost messages is told by a notice
//     Event, and then joins afresh (new MemberID, new view):
//     ErrEvicted (connected but not acknowledging within its window for
//     SlowMemberTimeout), ErrFellBehind (its window filled while it was
//     disconnected, for SlowMemberTimeout), ErrRemoved (disconnected for
//     longer than FailureTimeout, or unknown to the coordinator). The
//     application catches up from its storage. Messages a member sent in
//     the lost session and the coordinator had not acknowledged may be lost.
//   - Flow control and bounded memory: per member and direction at most
//     WindowMessages messages and WindowBytes bytes are unacknowledged;
//     the window is also the retransmission buffer. A coordinator's send
//     waits while a member's window is full, at most SlowMemberTimeout (and
//     ctx), then evicts that member and goes on. A member acknowledges what
//     Receive returned, so a member that keeps up with its window is never
//     evicted and a stuck application is. A member's own sends wait for its
//     window to the coordinator, bounded by ctx.
//   - Size limit: MaxMessage (default 102400 bytes, the same on every node;
//     a join with another value is refused with ErrIncompatible) is enforced
//     on send (ErrMessageTooLarge, nothing sent) and on receive (a protocol
//     error naming both sizes; the connection is dropped and nothing of the
//     frame is delivered).
//   - Failure detection: every link sends a heartbeat each
//     HeartbeatInterval it has nothing else to send, and closes when it has
//     heard nothing for FailureTimeout.
//
// # What it costs
//
//   - Acknowledgements ride on the next frame a link writes to the peer. A
//     frame of its own goes out only once a quarter of the peer's window
//     (messages or bytes) waits for one, or with the heartbeat: a quiet
//     stream of requests and replies costs one frame per message, not two.
//   - Buffers passed to Multicast and Send are referenced, not copied, until
//     every member acknowledged them: callers must not modify them. Memory
//     held is at most WindowBytes per member, plus the events waiting in
//     each Receive queue.
//   - A sender does not receive its own multicasts.
//   - The coordinator's own Receive queue holds at most WindowMessages
//     messages from members; while it is full, relaying waits for the
//     coordinator's application (members' windows then fill and their sends
//     wait). The coordinator is never evicted from its own group.
//   - A slow or disconnected member holds up the coordinator's sends for up
//     to SlowMemberTimeout before it is evicted; a disconnected member is
//     removed after FailureTimeout at the latest.
//   - Everything goes through the coordinator, which is the bottleneck and
//     the single point of failure of its group.
//   - Received Data is owned by the receiver; Event.Release hands a large
//     buffer back for reuse, which matters at high throughput: reading into
//     warm memory is several times faster than into fresh memory. Small
//     messages are carved from shared blocks, so keeping one keeps its
//     block (256 KiB) alive.
//
// Over loopback TCP on a 2-core machine (BenchmarkMulticastTCP against
// BenchmarkPlainTCP, which writes each message with its own system call),
// one coordinator reaches about 2 million 100-byte messages per second to
// one member, and about 4 GB/s with 100 KiB messages whose receiver calls
// Release (about 1 GB/s without), on a par with plain TCP.
//
// # Frames
//
// A connection carries frames: a 4-byte big-endian length of what follows,
// a type byte, and fields (integers big-endian; an identifier is a 1-byte
// length and bytes; text a 2-byte length and bytes):
//
//	1 hello    version u8, flags u8 (1 = open sender), maxMessage u32,
//	           window messages u32, window bytes u64, session u64,
//	           delivered u64, group name, node name
//	2 welcome  session u64, last sequence number received u64, member id
//	3 bye      code u8, text (why a session ends or a hello is refused)
//	4 ack      sequence number u64 (cumulative; also the heartbeat)
//	5 data     seq u64, flags u8 (1 = unicast), origin id, destination id,
//	           body (the rest of the frame, at most MaxMessage bytes)
//	6 view     seq u64, view id u64, count u16, member ids
//	7 leave    seq u64
//
// A member opens with hello (session 0 to join, or its session and the last
// sequence number it received to resume) and gets welcome or bye. Data, view
// and leave frames are numbered per direction from 1. A frame longer than
// MaxMessage plus the largest header is refused before it is read. The
// decoder is strict (unknown types, flags or codes, truncated fields,
// trailing bytes are errors) and fuzzed. Writes are coalesced: each link's
// writer gathers everything due into one vectored write, copying headers
// and small bodies and referencing large ones, so small messages share
// system calls and large ones are not copied.
//
// # Time and randomness
//
// Timers and clocks come from package time, so tests run the timeouts on a
// fake clock with testing/synctest over gcs/memtransport; Config.Rand makes
// session ids and backoff jitter repeatable. The coordinator's membership
// and session bookkeeping is a deterministic core without goroutines or
// clocks, tested with scripts in testdata.
package gcs
