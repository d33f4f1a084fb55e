package primary

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// checkOpen returns storage.ErrClosed, wrapped with op, once Close began.
func (p *Primary) checkOpen(op string) error {
	if p.ctx.Err() != nil {
		return fmt.Errorf("primary: %s: %w", op, storage.ErrClosed)
	}
	return nil
}

// Load implements storage.Storage from the local store.
func (p *Primary) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	if err := p.checkOpen("load"); err != nil {
		return nil, 0, err
	}
	return p.inner.Load(ctx, oid)
}

// LoadBefore implements storage.Storage from the local store.
func (p *Primary) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	if err := p.checkOpen("load before"); err != nil {
		return nil, 0, 0, err
	}
	return p.inner.LoadBefore(ctx, oid, before)
}

// History implements storage.Storage from the local store.
func (p *Primary) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	if err := p.checkOpen("history"); err != nil {
		return nil, err
	}
	return p.inner.History(ctx, oid, n)
}

// LastTransaction implements storage.Storage from the local store.
func (p *Primary) LastTransaction(ctx context.Context) (storage.TID, error) {
	if err := p.checkOpen("last transaction"); err != nil {
		return 0, err
	}
	return p.inner.LastTransaction(ctx)
}

// Chain implements storage.Storage from the local store.
func (p *Primary) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	if err := p.checkOpen("chain"); err != nil {
		return storage.Checksum{}, err
	}
	return p.inner.Chain(ctx, tid)
}

// NewOID implements storage.Storage from the local store (replicas never
// hand out OIDs).
func (p *Primary) NewOID(ctx context.Context) (storage.OID, error) {
	if err := p.checkOpen("new OID"); err != nil {
		return 0, err
	}
	return p.inner.NewOID(ctx)
}

// Iterator implements storage.Storage from the local store.
func (p *Primary) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	if err := p.checkOpen("iterator"); err != nil {
		return nil, err
	}
	return p.inner.Iterator(ctx, from, to)
}

// Pack packs the local store and replicates the pack. It runs between two
// finish broadcasts, with the horizon capped at the last broadcast TID, so
// every replica packs at the same point of the same history.
func (p *Primary) Pack(ctx context.Context, before storage.TID) error {
	if err := p.checkOpen("pack"); err != nil {
		return err
	}
	p.ts.lock()
	defer p.ts.unlock()
	h := min(before, storage.TID(p.lastSent.Load()))
	if err := p.inner.Pack(ctx, h); err != nil {
		return err
	}
	_ = p.send("", &wire.Pack{Epoch: p.epoch, Before: uint64(h)})
	return nil
}

// wholeMax bounds the object data of a transaction sent whole, as one txn
// message at its finish: up to it, copying the data into that message
// costs less than the begin, stores and vote it saves; above it, the
// transaction streams, each store going out before it is written locally.
const wholeMax = replayInline

// Begin begins a transaction locally. Nothing goes to the replicas yet: a
// transaction is sent whole at its finish, or streams from the store that
// makes it too large for that.
func (p *Primary) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	if err := p.checkOpen("begin"); err != nil {
		return nil, err
	}
	it, err := p.inner.Begin(ctx, meta)
	if err != nil {
		return nil, err
	}
	// The seq is taken under beginMu, so the transaction's first message,
	// whenever it goes out, follows any live message that does not count
	// it as missed.
	p.beginMu.RLock()
	p.mu.Lock()
	p.seq++
	t := &txn{p: p, inner: it, seq: p.seq, meta: meta}
	p.inflight[t.seq] = &flight{}
	p.mu.Unlock()
	p.beginMu.RUnlock()
	return t, nil
}

// txnState mirrors the local transaction's state, so the Primary knows what
// to broadcast when a call fails.
type txnState int

const (
	txnOpen txnState = iota
	txnVoted
	txnDone
)

// txn is a transaction of the Primary.
type txn struct {
	p      *Primary
	inner  storage.Txn
	seq    uint64
	meta   storage.TxnMeta
	state  txnState
	ticket uint64 // turnstile ticket, from a successful Vote
	// streaming is set once the begin went out; until then the stores
	// are kept in records (wire.AppendTxnRecord), to go out whole.
	streaming bool
	records   []byte
	// storeErr is a local Store failure after the store was broadcast:
	// the transaction cannot commit.
	storeErr error
}

// Store refuses data that the replicas could not be sent before it stores
// it anywhere. Otherwise it keeps the store for the whole transaction's
// message while the transaction's data stays within wholeMax, and from
// the store that exceeds it streams: it broadcasts the begin and the kept
// stores, then each store before storing it locally, so that the replicas
// receive and write a large object while the local store writes it. A
// local failure is returned and fails the transaction: its Vote returns
// that error and aborts it everywhere, so no replica commits a store the
// primary does not have.
func (t *txn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := t.p.checkOpen("store"); err != nil {
		return err
	}
	if t.state != txnOpen {
		return t.inner.Store(ctx, oid, serial, data) // reports the state error
	}
	if t.storeErr != nil {
		return t.storeErr
	}
	m := &wire.Store{Epoch: t.p.epoch, Seq: t.seq, OID: uint64(oid), Serial: uint64(serial), Data: data}
	if err := t.p.checkStore(m); err != nil {
		return fmt.Errorf("primary: store %s of %d bytes cannot be replicated: %w: %w", oid, len(data), storage.ErrTooLarge, err)
	}
	if !t.streaming && len(t.records)+wire.TxnRecordHead+len(data) <= wholeMax {
		t.records = wire.AppendTxnRecord(t.records, uint64(oid), uint64(serial), data)
	} else {
		t.stream()
		_ = t.p.send("", m)
	}
	if err := t.inner.Store(ctx, oid, serial, data); err != nil {
		t.storeErr = err
		return err
	}
	return nil
}

// stream switches the transaction to streaming: it broadcasts the begin
// and the stores kept so far.
func (t *txn) stream() {
	if t.streaming {
		return
	}
	t.streaming = true
	p := t.p
	_ = p.send("", &wire.Begin{Epoch: p.epoch, Seq: t.seq, User: t.meta.User, Description: t.meta.Description, Extension: t.meta.Extension})
	// The records were encoded here, so they decode.
	recs, _ := (&wire.Txn{Records: t.records}).DecodeRecords()
	for _, r := range recs {
		_ = p.send("", &wire.Store{Epoch: p.epoch, Seq: t.seq, OID: r.OID, Serial: r.Serial, Data: r.Data})
	}
}

// storeHeadMax bounds the encoding of a store message without its data:
// the envelope, five integers and the data's byte string head.
const storeHeadMax = 64

// checkStore returns an error if m could not be sent. Only sizes can make a
// store unsendable, so data clearly within the limits (the Primary's codec
// has the default wire limits) skips the encoding Check does.
func (p *Primary) checkStore(m *wire.Store) error {
	if len(m.Data) <= wire.DefaultMaxDataLen && p.sender.FitsFragments(len(m.Data)+storeHeadMax) == nil {
		return nil
	}
	return p.sender.Check(m)
}

// Vote votes locally, takes the transaction's place in commit order and
// broadcasts the vote.
func (t *txn) Vote(ctx context.Context) error {
	if err := t.p.checkOpen("vote"); err != nil {
		return err
	}
	if t.storeErr != nil && t.state == txnOpen {
		_ = t.inner.Abort(ctx)
		t.dropUnvoted()
		return t.storeErr
	}
	// Closing the Primary ends a wait for the commit lock, whatever the
	// local store does on its own Close.
	vctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.p.ctx, cancel)
	err := t.inner.Vote(vctx)
	stop()
	cancel()
	if err != nil {
		if cerr := t.p.checkOpen("vote"); cerr != nil {
			err = cerr
		}
		if t.state == txnOpen {
			// The local store aborted the transaction.
			t.dropUnvoted()
		}
		return err
	}
	t.state = txnVoted
	t.ticket = t.p.ts.ticket()
	if t.streaming {
		_ = t.p.send("", &wire.Vote{Epoch: t.p.epoch, Seq: t.seq})
	}
	return nil
}

// Finish commits with a TID the primary chooses, max(now, last+1),
// broadcasts the finish in commit order and waits for the sync policy
// (outside the commit lock). If the policy is not met the Commit is
// returned with an error wrapping ErrNotReplicated: the transaction is
// committed and durable locally.
func (t *txn) Finish(ctx context.Context) (storage.Commit, error) {
	if err := t.p.checkOpen("finish"); err != nil {
		return storage.Commit{}, err
	}
	if t.state != txnVoted {
		return t.inner.Finish(ctx) // reports the state error
	}
	// The commit lock is held from Vote, so lastChosen is stable here.
	tid := storage.NextTID(t.p.cfg.Now(), storage.TID(t.p.lastChosen.Load()))
	return t.finishAt(ctx, tid, storage.Checksum{})
}

// FinishAt is Finish with the caller's TID, as storage.Txn documents.
func (t *txn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	if err := t.p.checkOpen("finish"); err != nil {
		return storage.Commit{}, err
	}
	if t.state != txnVoted {
		return t.inner.FinishAt(ctx, tid, expect)
	}
	return t.finishAt(ctx, tid, expect)
}

func (t *txn) finishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	p := t.p
	// Record the TID before the store releases its commit lock: the next
	// voter chooses its TID after this one, while this commit syncs.
	prev := p.lastChosen.Load()
	if uint64(tid) > prev {
		p.lastChosen.Store(uint64(tid))
	}
	// The finish goes out as soon as the commit is written, in commit
	// order: replicas apply and sync it while the local store syncs (or,
	// see below, before), so the syncs overlap. The caller still hears of
	// the commit only once it is durable here (and on the replicas its
	// policy asks for).
	c, durable, err := storage.FinishAtDeferred(ctx, t.inner, tid, expect)
	if err != nil {
		if errors.Is(err, storage.ErrTIDOrder) || errors.Is(err, storage.ErrChainMismatch) {
			// Still voted and holding the commit lock: the caller may
			// retry or abort, so nothing is broadcast yet.
			p.lastChosen.Store(prev)
			return c, err
		}
		_ = t.inner.Abort(ctx)
		t.outcome(nil, nil, false)
		return c, err
	}
	p.commits.Add(1)
	others := p.finishing.Add(1) > 1
	defer p.finishing.Add(-1)
	durable = sync.OnceValue(durable)
	mode := p.policy(ctx).Mode
	t.outcome(&c, durable, mode == Received)
	// The replicas' acknowledgement comes after a transfer, a write and a
	// sync of theirs, later than the local sync would end: in applied
	// mode, a commit among others waits for it first, so that the local
	// round starts later and covers the commits written meanwhile, and the
	// primary issues fewer syncs (leaving more of the disk to the replicas
	// when they share it). A lone commit has nothing to share its round
	// with and syncs at once.
	replicasFirst := mode == Applied && others
	var serr error
	if replicasFirst {
		serr = p.waitSync(ctx, c.TID)
	}
	if err := durable(); err != nil {
		// Written and sent, but not durable here: the local store has
		// failed, and the commit is not acknowledged.
		return storage.Commit{}, err
	}
	if !replicasFirst {
		serr = p.waitSync(ctx, c.TID)
	}
	return c, serr
}

// Abort aborts locally and on the replicas.
func (t *txn) Abort(ctx context.Context) error {
	err := t.inner.Abort(ctx)
	switch t.state {
	case txnOpen:
		t.dropUnvoted()
	case txnVoted:
		t.outcome(nil, nil, false)
	}
	return err
}

// dropUnvoted ends a transaction that never voted: it holds no place in
// commit order, so its abort goes out at once, if the replicas heard of it.
func (t *txn) dropUnvoted() {
	t.state = txnDone
	p := t.p
	p.mu.Lock()
	delete(p.inflight, t.seq)
	p.mu.Unlock()
	if t.streaming {
		_ = p.send("", &wire.Abort{Epoch: p.epoch, Seq: t.seq})
	}
}

// outcome broadcasts a voted transaction's finish (c != nil) or abort in
// its turn: the whole transaction if it did not stream (asking for a
// received acknowledgement if wantReceived), and no abort if it did not;
// replicas that went live while it was in flight get it whole as a replay
// right after the finish. A replay is read from the local store, which
// shows the commit only once it is durable: durable waits for that.
func (t *txn) outcome(c *storage.Commit, durable func() error, wantReceived bool) {
	t.state = txnDone
	p := t.p
	p.ts.enter(t.ticket)
	defer p.ts.leave()
	p.mu.Lock()
	f := p.inflight[t.seq]
	delete(p.inflight, t.seq)
	if c != nil {
		p.index.add(c.TID)
	}
	p.mu.Unlock()
	switch {
	case c == nil && t.streaming:
		_ = p.send("", &wire.Abort{Epoch: p.epoch, Seq: t.seq})
	case c == nil:
	case t.streaming:
		_ = p.send("", &wire.Finish{Epoch: p.epoch, Seq: t.seq, TID: uint64(c.TID), Chain: wire.Chain(c.Chain)})
	default:
		m := &wire.Txn{Epoch: p.epoch, Seq: t.seq, TID: uint64(c.TID), Chain: wire.Chain(c.Chain),
			User: t.meta.User, Description: t.meta.Description, Extension: t.meta.Extension, Records: t.records}
		if wantReceived {
			m.Flags = wire.TxnWantReceived
		}
		_ = p.send("", m)
	}
	if c == nil {
		return
	}
	p.lastSent.Store(uint64(c.TID))
	if f == nil || len(f.missed) == 0 {
		return
	}
	derr := durable()
	for _, m := range f.missed {
		err := derr
		if err == nil {
			_, err = p.replay(p.ctx, m, c.TID-1, c.TID)
		}
		if err != nil {
			p.catchUpFailed(m, err)
		}
	}
}
