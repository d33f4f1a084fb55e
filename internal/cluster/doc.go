// Package cluster runs a repld primary and any number of replicas in one
// process, for tests and benchmarks: each node has its own gcs node, data
// directory and store (memstore or badgerstore) on an in-memory network with
// fault injection (gcs/memtransport) or on loopback TCP.
//
// It owns the helpers replication tests share: start, stop and restart a
// replica or the primary (keeping their data), break or partition links,
// wait until replicas are healthy, caught up or quarantined, and compare two
// stores transaction by transaction (metadata, records, chain). Every
// replica store is wrapped in a faultstore, so a test can make a replica's
// disk fail.
//
// Every wait is bounded (Config.WaitBound) and fails the test when the
// bound passes; nothing here sleeps as an assertion. Everything a Cluster
// starts is stopped by the test's cleanup.
package cluster
