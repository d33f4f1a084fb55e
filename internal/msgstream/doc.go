// Package msgstream carries wire messages over a gcs group as fragments: it
// owns the step between the application's messages (package wire) and the
// group's size-limited messages (package gcs), using the fragment format
// (package fragment).
//
// # Sending
//
// A Sender encodes a message with the wire codec's buffers API, so object
// data is never copied on its way out: the fragments are views of the
// encoded head and of the caller's payload, and each fragment goes out as one
// gcs message whose parts are the fragment header and those views. The
// caller must therefore leave a Store's data unmodified after Send (gcs keeps
// references until every member acknowledged it).
//
// The fragment header has no message id, so the fragments of two messages
// must never interleave on one FIFO stream. A Sender sends all fragments of
// one message while holding its mutex; every multicast and unicast of a node
// must go through one Sender. A message that a receiver would refuse (beyond
// a wire limit, or needing more than 65535 fragments) is refused by Send and
// Check before anything is sent, so a caller can check a message before
// acting on it. Once the first fragment of a message is queued, the rest are
// sent even if the context ends, because a message cut short would break the
// stream for every receiver; gcs bounds that wait (a member that does not
// keep up is evicted).
//
// # Receiving
//
// A Receiver is fed every event of a group, in order, and returns whole
// decoded messages. It keeps one strict fragment.Reassembler per origin
// member, drops the one of a member that left the view, and resets all of
// them on a session notice (after which the stream restarts). Any fragment
// or decoding error is returned as a *ProtocolError naming the origin;
// nothing of that message is returned. What to do about it is the caller's
// decision (a replica quarantines itself, a primary reports the sender).
//
// A message of one fragment and a Store's data alias the event's buffer,
// which the Receiver never reuses or releases; the caller owns them.
//
// # Counters
//
// Sender and Receiver count messages, fragments and bytes, and the Receiver
// counts fragment and protocol errors, in atomic counters read at any time
// through Counters; the commands export them as metrics.
package msgstream
