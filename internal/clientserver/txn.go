package clientserver

import (
	"context"
	"fmt"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// txnQueue bounds the requests queued for one transaction; the client
// waits for an answer after its stores, so only stores queue up.
const txnQueue = 64

// idleWorkers bounds the transaction goroutines a connection keeps waiting
// for its next begin. A client that commits from many goroutines over one
// connection has that many transactions open at once; keeping as many
// goroutines saves starting one, and growing its stack, per transaction.
const idleWorkers = 64

// worker runs one transaction of a connection: its requests in order, on
// a goroutine of its own, because Vote may wait for the commit lock while
// the connection's other requests go on.
type worker struct {
	ops chan wire.Message
	// pending is the transaction's begin while no goroutine runs it yet
	// (then nil). Only the connection's reader uses it.
	pending *wire.CBegin
}

// start hands a transaction to a goroutine.
type start struct {
	b *wire.CBegin
	w *worker
}

// begin starts transaction m.Txn.
func (c *conn) begin(m *wire.CBegin) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.txns == nil:
		return nil // the connection is ending
	case c.txns[m.Txn] != nil:
		return fmt.Errorf("transaction %d begun while open", m.Txn)
	case len(c.txns) >= c.s.cfg.MaxTxns:
		c.sendErr(m.ID, fmt.Errorf("%d transactions open on one connection: finish or abort one first", len(c.txns)))
		return nil
	}
	w := &worker{ops: make(chan wire.Message, txnQueue), pending: m}
	c.txns[m.Txn] = w
	if m.ID != 0 {
		// The client waits for the begin's answer.
		c.run(w)
	}
	return nil
}

// run hands a pending transaction to a goroutine. A pipelined begin and
// the stores that follow it are only queued until a request that needs
// an answer (or a full queue): the transaction's goroutine is woken
// once for its begin, stores and vote, rather than for each.
func (c *conn) run(w *worker) {
	s := start{b: w.pending, w: w}
	w.pending = nil
	select {
	case next := <-c.idle:
		next <- s // buffered: never blocks
	default:
		c.wg.Add(1)
		go c.work(s)
	}
}

// work runs transactions, the first s, until the connection ends. Between
// two it waits for the connection's next begin, unless idleWorkers
// goroutines wait already: reusing a goroutine saves starting one, and
// growing its stack, for each transaction.
func (c *conn) work(s start) {
	defer c.wg.Done()
	next := make(chan start, 1)
	for {
		c.runTxn(s.b, s.w)
		select {
		case c.idle <- next:
		default:
			return
		}
		select {
		case s = <-next:
		case <-c.ctx.Done():
			return
		}
	}
}

// toTxn queues a request of transaction txn.
func (c *conn) toTxn(txn, id uint64, m wire.Message) error {
	c.mu.Lock()
	w := c.txns[txn]
	c.mu.Unlock()
	if w == nil {
		if _, ok := m.(*wire.CStore); ok {
			return fmt.Errorf("store in transaction %d, which is not open", txn)
		}
		c.sendErr(id, fmt.Errorf("transaction %d is not open: %w", txn, storage.ErrTxnState))
		return nil
	}
	_, store := m.(*wire.CStore)
	if w.pending != nil && len(w.ops) == cap(w.ops) {
		c.run(w)
	}
	select {
	case w.ops <- m:
	case <-c.ctx.Done():
	}
	if w.pending != nil && !store {
		c.run(w)
	}
	return nil
}

// forget removes transaction txn from the connection; its later requests
// are answered with ErrTxnState.
func (c *conn) forget(txn uint64) {
	c.mu.Lock()
	if c.txns != nil {
		delete(c.txns, txn)
	}
	c.mu.Unlock()
}

// runTxn begins the transaction and serves its requests until it is
// finished or aborted, or the connection ends (which aborts it). A begin
// with id 0 is pipelined: the client does not wait for its answer, so a
// failure to begin is reported by the vote instead.
func (c *conn) runTxn(b *wire.CBegin, w *worker) {
	ctx := c.txnCtx
	txn, err := c.s.store.Begin(ctx, storage.TxnMeta{User: b.User, Description: b.Description, Extension: b.Extension})
	if err != nil && b.ID != 0 {
		c.forget(b.Txn)
		c.sendErr(b.ID, err)
		return
	}
	c.reply(b.ID, nil)
	if txn != nil {
		// Aborting a finished transaction does nothing, so this only cleans
		// up after a dropped connection or an error.
		defer func() { _ = txn.Abort(c.abortCtx) }()
	}
	failed := err // the failed begin or first failed store, reported by the vote
	for m := range w.ops {
		switch m := m.(type) {
		case *wire.CStore:
			if failed == nil {
				failed = txn.Store(ctx, storage.OID(m.OID), storage.TID(m.Serial), m.Data)
			}
		case *wire.CVote:
			c.reply(m.ID, vote(ctx, txn, failed))
		case *wire.CVoteFinish:
			if err := vote(ctx, txn, failed); err != nil {
				// The transaction is aborted: nothing more is to come for
				// it, so the client need not send an abort.
				c.forget(b.Txn)
				c.sendErr(m.ID, err)
				return
			}
			if c.finished(b.Txn, m.ID)(txn.Finish(ctx)) {
				return
			}
		case *wire.CFinish:
			if txn == nil {
				c.sendErr(m.ID, fmt.Errorf("finish of a transaction that did not begin: %w", storage.ErrTxnState))
			} else if c.finished(b.Txn, m.ID)(txn.Finish(ctx)) {
				return
			}
		case *wire.CFinishAt:
			if txn == nil {
				c.sendErr(m.ID, fmt.Errorf("finish of a transaction that did not begin: %w", storage.ErrTxnState))
			} else if c.finished(b.Txn, m.ID)(txn.FinishAt(ctx, storage.TID(m.TID), storage.Checksum(m.Chain))) {
				return
			}
		case *wire.CAbort:
			var err error
			if txn != nil {
				err = txn.Abort(ctx)
			}
			c.forget(b.Txn)
			c.reply(m.ID, err)
			return
		}
	}
}

// vote votes txn, or, if its begin or a store failed, aborts it and
// returns that failure, as if Vote had failed.
func vote(ctx context.Context, txn storage.Txn, failed error) error {
	switch {
	case failed == nil:
		return txn.Vote(ctx)
	case txn != nil:
		_ = txn.Abort(ctx)
	}
	return failed
}

// finished returns a function that answers a finish of transaction txn
// and reports whether the transaction is over.
func (c *conn) finished(txn, id uint64) func(storage.Commit, error) bool {
	return func(cm storage.Commit, err error) bool {
		switch {
		case err == nil:
			c.forget(txn)
			c.sendCommitted(&wire.CCommit{ID: id, TID: uint64(cm.TID), Chain: wire.Chain(cm.Chain)})
			return true
		case cm.TID != 0:
			// Committed, but something after the commit failed (a
			// primary's replicas did not acknowledge in time).
			c.forget(txn)
			e := clientproto.ErrorMessage(id, err)
			e.Actual = uint64(cm.TID)
			c.send(e)
			return true
		}
		c.sendErr(id, err)
		// FinishAt's order and chain errors leave the transaction voted
		// for the client to retry or abort.
		return false
	}
}

// reply answers a request that returns nothing (unless its id is 0).
func (c *conn) reply(id uint64, err error) {
	switch {
	case err != nil:
		c.sendErr(id, err)
	case id != 0:
		c.send(&wire.COK{ID: id})
	}
}
