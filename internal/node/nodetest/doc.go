// Package nodetest starts whole repld nodes in a test's process — a
// primary and replicas replicating over loopback TCP, each on a
// badgerstore in a temporary directory and each with its admin HTTP
// server, wired as the repld command wires them — so that tools working
// against the admin endpoints (replctl) are tested against real nodes.
//
// It owns what such tests need beyond the replication cluster of
// internal/cluster: admin addresses that stay the same across restarts,
// stopping and restarting nodes, a deterministic workload, and divergence
// injected under a stopped replica: a history that differs from the
// primary's from a chosen transaction on (ReplayFromPrimary with an edited
// or skipped transaction), a transaction no other node has (CommitExtra),
// and an object state that differs while the history agrees
// (CorruptObject).
//
// Everything a Cluster starts is stopped by the test's cleanup, the admin
// servers before the nodes; every wait is bounded.
package nodetest
