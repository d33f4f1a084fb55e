// Package nodetest starts whole repld nodes in a test's process — a
// primary and replicas replicating over loopback TCP, each an
// internal/node Node on a badgerstore in a temporary directory and each
// with its admin HTTP server, control endpoints included, wired as the
// repld command wires them — so that tools working against the admin
// endpoints (replctl) are tested against real nodes.
//
// It owns what such tests need: gcs and admin addresses that stay the same
// across restarts and role changes, stopping and restarting nodes,
// promotion and following (Node.Promote, Node.Follow, or the control
// endpoints; Cluster.Primary is whichever node runs as the primary), an old
// primary coming back as a replica (Node.StartAsReplica), a deterministic
// workload, and divergence injected under a stopped node — a replica or the
// primary: a history that differs from the primary's from a chosen
// transaction on (ReplayFromPrimary with an edited or skipped transaction),
// a transaction no other node has (CommitExtra), and an object state that
// differs while the history agrees (CorruptObject). Node.Faults makes a
// node's disk fail.
//
// Everything a Cluster starts is stopped by the test's cleanup, each admin
// server before its node; every wait is bounded.
package nodetest
