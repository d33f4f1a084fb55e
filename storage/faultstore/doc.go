// Package faultstore wraps any storage.Storage and injects errors into
// chosen operations, so tests can make a store fail as a full or broken disk
// would: a replica that cannot apply an update, a primary whose commit fails
// after the vote, an iterator that breaks during catch-up.
//
// Faults are set per operation (Op) with FailNext (the next n calls fail)
// or FailAlways, and removed with Clear. An injected error matches
// ErrInjected with errors.Is, and also the error given to FailNext or
// FailAlways, so a test can inject, say, syscall.ENOSPC and still tell
// injected failures from real ones.
//
// Guarantees:
//
//   - A failing call does not reach the inner store, except that a failing
//     Vote, Finish or FinishAt aborts the inner transaction first: the inner
//     store keeps no trace of the transaction and its commit lock is
//     released, as after a real failure before the commit point. The
//     wrapped transaction is then finished; later calls report
//     storage.ErrTxnState (from the inner store).
//   - With no fault set, a Store behaves exactly as the inner store (it
//     passes the conformance suite whenever the inner store does).
//   - Safe for concurrent use; faults may be changed while other goroutines
//     use the store.
package faultstore
