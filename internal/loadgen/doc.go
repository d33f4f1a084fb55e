// Package loadgen is the workload engine behind `repld bench` and the
// benchmark table: N clients commit transactions of M objects of B bytes
// (and, with a read ratio, load objects) through any storage.Storage for a
// duration or a number of commits, and report throughput and a latency
// histogram with p50, p99 and p999.
//
// Guarantees:
//
//   - Conflict-free: each client allocates its own objects with NewOID
//     before the clock starts and only ever rewrites those, passing the
//     serial of its last commit, so no two clients touch the same OID and
//     a conflict is a bug in the storage, reported as an error.
//   - Read-your-writes is checked: a client's Load must return a serial at
//     least as new as its own last commit of that object.
//   - Commits that return primary.ErrNotReplicated are durable and counted
//     as commits, and also counted apart; any other error stops every
//     client and Run returns it with the result so far.
//   - The generator does not allocate per operation: each client builds one
//     immutable payload up front and stores it in every revision, which the
//     storage contract allows because the caller never modifies it.
package loadgen
