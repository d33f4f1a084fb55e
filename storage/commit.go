package storage

import "context"

// OneStepCommitter is an optional capability of a Txn: voting and
// finishing in one step. A network client sends both in one request, so
// the commit lock is never held across a round trip to the client.
type OneStepCommitter interface {
	// VoteAndFinish is Vote followed, if the vote succeeded, by Finish:
	// the same errors, and the same Commit.
	VoteAndFinish(ctx context.Context) (Commit, error)
}

// CommitTxn votes and finishes txn, in one step if txn is a
// OneStepCommitter. A failed vote aborts the transaction and returns the
// zero Commit; a Finish that committed and then failed (a replicating
// primary's ErrNotReplicated, say) returns the Commit with its error.
func CommitTxn(ctx context.Context, txn Txn) (Commit, error) {
	if c, ok := txn.(OneStepCommitter); ok {
		return c.VoteAndFinish(ctx)
	}
	if err := txn.Vote(ctx); err != nil {
		return Commit{}, err
	}
	return txn.Finish(ctx)
}

// DeferredFinisher is an optional capability of a Txn: finishing without
// waiting for durability. A replicating primary uses it to send the
// finish to its replicas while its own write is being synced, so the two
// syncs overlap instead of adding up.
type DeferredFinisher interface {
	// FinishAtDeferred is FinishAt that returns once the commit is
	// written, in commit order, and the commit lock released, before it
	// is durable. wait returns when it is durable, or the error that
	// keeps it from being durable; readers may not see the transaction
	// before then. The errors of FinishAt leave the transaction as
	// FinishAt does, and wait is then nil.
	FinishAtDeferred(ctx context.Context, tid TID, expect Checksum) (c Commit, wait func() error, err error)
}

// FinishAtDeferred is txn.FinishAtDeferred if txn is a DeferredFinisher,
// and otherwise FinishAt with a wait that has nothing left to wait for.
func FinishAtDeferred(ctx context.Context, txn Txn, tid TID, expect Checksum) (Commit, func() error, error) {
	if d, ok := txn.(DeferredFinisher); ok {
		return d.FinishAtDeferred(ctx, tid, expect)
	}
	c, err := txn.FinishAt(ctx, tid, expect)
	if err != nil {
		return c, nil, err
	}
	return c, func() error { return nil }, nil
}
