// Package storagetest is the conformance suite of storage.Storage: one set
// of tests that every implementation (memstore, badgerstore, the replicating
// primary, the network client) runs from its own tests, so they all mean the
// same thing by every method.
//
// Use it from a _test.go file:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, storagetest.Harness{
//			Open: func(t *testing.T) storage.Storage {
//				s := openMyStore(t, t.TempDir())
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//			Reopen: ..., // optional: enables the persistence tests
//		})
//	}
//
// Run runs each check as a named subtest ("TwoPhaseCommit", "Conflicts",
// "Model", "Pack", "FinishAt", "Replay", "CommitLock", ...), so one can be
// selected with go test -run 'TestConformance/Pack'. RunReadOnly checks a
// read-only view fed by a writer.
//
// What the suite relies on, beyond the storage contract:
//
//   - Open returns an empty store for every call; two stores opened in one
//     subtest are independent (the replay test copies one into another).
//   - Close may be called more than once (the harness's cleanup usually
//     closes again); the suite accepts nil or storage.ErrClosed.
//   - The store's clock is not controlled by the suite. TIDs are only
//     compared with each other and with TIDs the suite chose for FinishAt
//     (dates in 2000 and 2200).
//
// The suite is deterministic (fixed random seeds, ordering checked with
// channels, never with sleeps) and small: a few hundred commits in all, so
// it stays fast on a store that syncs every commit to disk. Blocking calls
// run under a generous deadline so that a deadlock fails the test instead of
// hanging it; the deadline is a guard, not a timing assertion.
package storagetest
