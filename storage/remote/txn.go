package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

type txnState int

const (
	txnOpen txnState = iota
	txnVoted
	txnDone
)

// The one-step commit is what keeps the commit lock off the network.
var _ storage.OneStepCommitter = (*txn)(nil)

// txn is a transaction on the primary, bound to the connection it began
// on: if that connection is lost the node aborts it, and its calls return
// ErrDisconnected.
type txn struct {
	c     *Client
	cn    *conn
	num   uint64
	state txnState
	// storeErr is the first store the client could not send; the vote
	// reports it, as it would a store the node refused.
	storeErr error
	oids     []storage.OID
}

// Begin starts a transaction on the primary. It does not wait for the
// node's answer (a failure to begin is reported by Vote), except on a node
// that did not say it is the primary, whose refusal (storage.ErrReadOnly)
// it returns.
func (c *Client) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	if c.isClosed() {
		return nil, opErr("begin", errClosed)
	}
	cn, err := c.primary.conn()
	if err != nil {
		return nil, opErr("begin", err)
	}
	num := cn.txnNumber()
	begin := func(id uint64) wire.Message {
		return &wire.CBegin{ID: id, Txn: num, User: meta.User, Description: meta.Description, Extension: meta.Extension}
	}
	if cn.role == rolePrimary {
		err = cn.queue(ctx, begin(0))
	} else {
		var m wire.Message
		if m, _, err = cn.roundTrip(ctx, begin); err == nil {
			_, err = answer[*wire.COK](m)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			cn.post(&wire.CAbort{Txn: num}) // it may have begun after all
		}
	}
	if err != nil {
		return nil, opErr("begin", err)
	}
	return &txn{c: c, cn: cn, num: num}, nil
}

// check returns the error of a call in the wrong state, or on a closed
// client or lost connection.
func (t *txn) check(op string, want txnState) error {
	return opErr(op, t.checkState(want))
}

// checkState is check without the operation's name.
func (t *txn) checkState(want txnState) error {
	switch {
	case t.c.isClosed():
		return errClosed
	case t.state != want:
		return fmt.Errorf("transaction is %s: %w", t.stateName(), storage.ErrTxnState)
	case !t.cn.alive():
		t.state = txnDone
		return t.cn.lostErr()
	}
	return nil
}

func (t *txn) stateName() string {
	switch t.state {
	case txnOpen:
		return "open"
	case txnVoted:
		return "voted"
	}
	return "finished or aborted"
}

// end marks the transaction over and tells the node to abort it, without
// waiting (after a failed vote the node has aborted it already).
func (t *txn) end() {
	t.state = txnDone
	t.cn.post(&wire.CAbort{Txn: t.num})
}

// Store streams the revision to the primary without waiting: a store the
// node refuses is reported by Vote.
func (t *txn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	// The operation's name is only built for an error: Store is the one
	// call made per object.
	op := func() string { return "store " + oid.String() }
	if err := t.checkState(txnOpen); err != nil {
		return opErr(op(), err)
	}
	if t.storeErr != nil {
		return nil
	}
	if err := t.cn.queue(ctx, &wire.CStore{Txn: t.num, OID: uint64(oid), Serial: uint64(serial), Data: data}); err != nil {
		if errors.Is(err, ErrDisconnected) || errors.Is(err, storage.ErrClosed) {
			t.state = txnDone
			return opErr(op(), err)
		}
		t.storeErr = opErr(op(), err)
		return nil
	}
	t.oids = append(t.oids, oid)
	return nil
}

// Vote votes on the primary; on failure the transaction is aborted.
func (t *txn) Vote(ctx context.Context) error {
	if err := t.check("vote", txnOpen); err != nil {
		return err
	}
	if t.storeErr != nil {
		t.end()
		return t.storeErr
	}
	m, _, err := t.cn.roundTrip(ctx, func(id uint64) wire.Message { return &wire.CVote{ID: id, Txn: t.num} })
	if err == nil {
		_, err = answer[*wire.COK](m)
	}
	if err != nil {
		t.end()
		return opErr("vote", err)
	}
	t.state = txnVoted
	return nil
}

// Finish commits with a TID the primary chooses.
func (t *txn) Finish(ctx context.Context) (storage.Commit, error) {
	if err := t.check("finish", txnVoted); err != nil {
		return storage.Commit{}, err
	}
	return t.finish(ctx, "finish", func(id uint64) wire.Message { return &wire.CFinish{ID: id, Txn: t.num} })
}

// FinishAt commits at tid, as storage.Txn documents.
func (t *txn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	op := "finish at " + tid.String()
	if err := t.check(op, txnVoted); err != nil {
		return storage.Commit{}, err
	}
	return t.finish(ctx, op, func(id uint64) wire.Message {
		return &wire.CFinishAt{ID: id, Txn: t.num, TID: uint64(tid), Chain: wire.Chain(expect)}
	})
}

// VoteAndFinish implements storage.OneStepCommitter: Vote and Finish in
// one round trip, so the primary's commit lock is held only while the
// primary itself works. A failed vote ends the transaction, as Vote does.
// As with Finish, a connection lost during the call (ErrDisconnected)
// leaves it unknown whether the transaction committed.
func (t *txn) VoteAndFinish(ctx context.Context) (storage.Commit, error) {
	const op = "vote and finish"
	if err := t.check(op, txnOpen); err != nil {
		return storage.Commit{}, err
	}
	if t.storeErr != nil {
		t.end()
		return storage.Commit{}, t.storeErr
	}
	m, _, err := t.cn.roundTrip(ctx, func(id uint64) wire.Message { return &wire.CVoteFinish{ID: id, Txn: t.num} })
	if c, over, err := t.committedAnswer(m, err); over {
		return c, opErr(op, err)
	}
	// A failed vote, or a failed finish that did not commit: the node has
	// aborted the transaction or aborts it now.
	t.end()
	return storage.Commit{}, opErr(op, err)
}

func (t *txn) finish(ctx context.Context, op string, build func(id uint64) wire.Message) (storage.Commit, error) {
	m, _, err := t.cn.roundTrip(ctx, build)
	if c, over, err := t.committedAnswer(m, err); over {
		return c, opErr(op, err)
	}
	if errors.Is(err, storage.ErrTIDOrder) || errors.Is(err, storage.ErrChainMismatch) {
		return storage.Commit{}, opErr(op, err) // still voted
	}
	t.end()
	return storage.Commit{}, opErr(op, err)
}

// committedAnswer reads the answer m (with err from the round trip) to a
// request that finishes the transaction, and reports whether the
// transaction committed: with its Commit, or with the TID it committed at
// and the error of what failed after.
func (t *txn) committedAnswer(m wire.Message, err error) (storage.Commit, bool, error) {
	var cm *wire.CCommit
	if err == nil {
		cm, err = answer[*wire.CCommit](m)
	}
	if err == nil {
		t.state = txnDone
		c := storage.Commit{TID: storage.TID(cm.TID), Chain: storage.Checksum(cm.Chain)}
		t.committed(c.TID)
		return c, true, nil
	}
	if e, ok := m.(*wire.CError); ok && e.Code != wire.ClientErrConflict && e.Actual != 0 {
		// Committed, then something failed (not replicated in time).
		t.state = txnDone
		t.committed(storage.TID(e.Actual))
		return storage.Commit{TID: storage.TID(e.Actual)}, true, err
	}
	return storage.Commit{}, false, err
}

// committed makes the client's own commit visible to its later reads: the
// cache forgets what it wrote, and reads wait for its TID.
func (t *txn) committed(tid storage.TID) {
	t.c.cache.invalidate(t.oids)
	t.c.seen(tid)
}

// Abort aborts the transaction on the primary. A transaction whose
// connection was lost is already aborted there.
func (t *txn) Abort(ctx context.Context) error {
	if t.state == txnDone {
		return nil
	}
	if t.c.isClosed() {
		return opErr("abort", errClosed)
	}
	t.state = txnDone
	if !t.cn.alive() {
		return nil
	}
	m, _, err := t.cn.roundTrip(ctx, func(id uint64) wire.Message { return &wire.CAbort{ID: id, Txn: t.num} })
	if err == nil {
		_, err = answer[*wire.COK](m)
	}
	if errors.Is(err, ErrDisconnected) {
		return nil
	}
	return opErr("abort", err)
}
