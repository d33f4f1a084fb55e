// Package benchtable runs repld's benchmark table in one process: every
// node on loopback TCP, every store a badgerstore (durable, SyncWrites on)
// in its own temporary directory, removed after its row.
//
// The table has one row per setup and workload: the local badgerstore alone
// (no replication: the baseline), the mirror (two local badgerstores, every
// commit on both, no replication protocol: the control that says what two
// durable copies of every commit allow the machine), and a primary with 0,
// 1 and 2 replicas in
// each sync mode (async, received, applied; k=1), each under the workloads
// small (1 object of 100 B per transaction), medium (10 objects of 1 KiB)
// and large (1 object of 16 MiB) with 1 and 16 clients (large with 1 client
// only, so the table runs in minutes). Every row carries its ratios to the
// local-only row of the same workload and path: commits per second (higher
// is better) and p50 latency (lower is better), and the time the slowest
// replica still needed, after the workload stopped, to apply everything
// (the lag at the end). Rows also carry the sync rounds of the primary's
// (or the local) store and of the replicas' stores: rounds per commit and
// their mean duration. A store runs its rounds back to back, so rounds
// that fill the row's time say the disk's syncs bound it.
//
// After the rows come two transfer measurements: the catch-up of a replica
// that was stopped while the primary committed 100 000 small transactions,
// and the full resync of a new, empty replica from a primary that holds those
// transactions and a few 16 MiB objects. Then the targets, each with
// the measured value and whether it was met.
//
// A replicated row's clients reach the primary through Config.Connect
// when it is set (`repld bench-table` sets it to the network client,
// storage/remote, talking to a client server in front of the primary), and
// through the embedded primary otherwise (the application and the primary
// share the process; replication still travels over TCP). The PATH column
// says which: local, embedded or remote. With Config.Connect the local
// badgerstore is measured twice, in process and behind the same client
// server, and the replicated rows are compared with the second, so that
// their ratios are what replication costs; the second's own ratios, to
// the first, are what the network client costs. The targets on ratios
// give both.
//
// The numbers are comparable only within one run: the machine is shared and
// noisy, which is why every row is given as a ratio to a baseline measured
// in the same run. The noise changes within a run too, so each workload's
// rows are measured in several rounds (Config.Rounds), every row compared
// with the baseline of its own round, and the table gives the median ratio
// and the range.
package benchtable
