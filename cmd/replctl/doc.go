// Command replctl is how an operator sees a repld cluster and proves it
// consistent, or finds exactly where it is not. It talks only to the nodes'
// admin HTTP endpoints (--nodes or REPLCTL_NODES):
//
//	replctl status      one row per node and a summary line (--watch)
//	replctl verify      chain values at the newest common TID, and the
//	                    current state compared by a hash tree over OID ranges
//	replctl diff A B    the first differing TID (bisection over chain values,
//	                    O(log range) requests), what differs in it, and the
//	                    objects whose current state differs
//	replctl quarantine | release | resync | promote
//
// It owns the client side of the admin API (client.go: every failure names
// the node, the request and why; every answer is decoded strictly and
// validated, and FuzzDecodeAnswer covers the decoders), the hash-tree walk
// (state.go), the output formats and the exit codes.
//
// # Guarantees
//
//   - Exit status 0 means ok (for verify and diff: the nodes agree), 1 that
//     an inconsistency was found, 2 a usage or connection error, with a
//     message naming the node and the reason.
//   - --json output is a stable contract, documented field by field in the
//     README; text output is for people and may change.
//   - Work is bounded: every request has --timeout, the bisection at most
//     80 steps, the hash-tree walk stops after --max-objects differing
//     objects, and answers larger than 16 MiB are refused.
//   - verify and diff only read. The control commands say what they asked
//     of which node and what it answered, and stop at the first refusal.
package main
