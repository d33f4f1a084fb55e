package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// errStopped is returned by core.step when its context ended during a
// storage call: the replica is shutting down, which is not a failure.
var errStopped = errors.New("replica: stopped")

// coreEnv is what the apply state machine does outside itself. The driver
// implements it over gcs and files; tests record the calls.
type coreEnv interface {
	// send queues an acknowledgement or failure report for the primary.
	// In pipelined mode Applied is sent from finishing goroutines.
	send(m wire.Message)
	// saveEpoch persists a higher epoch before anything of it is applied.
	saveEpoch(epoch uint64) error
	// saveQuarantine persists the quarantine marker.
	saveQuarantine(q Quarantine) error
	// applied reports a committed transaction; in pipelined mode it is
	// called from finishing goroutines, possibly out of TID order.
	applied(tid storage.TID)
	// wake makes the driver call step or checkFinished soon: a pipelined
	// finish failed.
	wake()
	// now is the clock of quarantine times.
	now() time.Time
}

// pending is one transaction being received: its local transaction and
// whether its vote arrived.
type pending struct {
	seq   uint64
	txn   storage.Txn
	voted bool
	// oids are a replayed transaction's objects, recorded in
	// core.replayed at its finish.
	oids []storage.OID
	// restored collects a replayed transaction for core.restore instead
	// of txn.
	restored *storage.Transaction
}

// restorer is the fast path of replays a store may offer (badgerstore
// does): it writes many whole committed transactions, checked against
// their chain values, and shares one sync among them. It returns how many
// of txns are durable: all, or those before the one its error is about.
type restorer interface {
	Restore(ctx context.Context, txns []storage.Transaction) (int, error)
}

// deferredRestorer is a restorer that can return before the transactions
// it wrote are durable (badgerstore can): the replica then writes the
// next batch while this one's sync runs, as live finishes pipeline.
type deferredRestorer interface {
	RestoreDeferred(ctx context.Context, txns []storage.Transaction) (n int, wait func() error, err error)
}

// Bounds of a batch of replayed transactions for the restorer: it is
// written when it reaches either, or when no message is waiting.
const (
	maxRestoreTxns  = 4096
	maxRestoreBytes = 16 << 20
)

// maxReplayed bounds core.replayed: past it the pipeline is drained and
// the map starts afresh from the store's committed state.
const maxReplayed = 1 << 16

// core is the replica's apply state machine: it takes the primary's
// messages in stream order and turns them into storage calls,
// acknowledgements and, on any failure, a quarantine. It has no goroutines,
// network or clock of its own, so scripts drive it in tests. Used by one
// goroutine.
type core struct {
	store storage.Storage
	env   coreEnv
	log   *zap.Logger

	epoch   uint64
	lastTID storage.TID
	// live is set by the primary's live message; nextSeq is its first live
	// seq. Before it only seq-0 replays are applied.
	live    bool
	nextSeq uint64
	// inflight holds live transactions by seq; replay the one seq-0
	// transaction being replayed.
	inflight map[uint64]*pending
	replay   *pending
	// replayed maps each object a replayed transaction stored to that
	// transaction's TID, from its finish until the pipeline is drained:
	// the serial the next replayed store of the object must name, which
	// the store cannot tell before that finish is durable.
	replayed map[storage.OID]storage.TID
	// restore is the store's restorer, if it has one; batch holds the
	// finished replays not yet given to it, batchBytes their data size.
	restore    restorer
	deferred   deferredRestorer
	batch      []storage.Transaction
	batchBytes int
	// primaryTID is the primary's last TID from its heartbeats.
	primaryTID storage.TID
	quarantine *Quarantine

	refusedEpoch uint64

	// pipeline makes finish write each commit and leave the wait for its
	// durability to a goroutine, so later transactions' writes overlap
	// its sync (group commit). unsynced are the written commits whose
	// wait has not started: their waits start together, in one goroutine,
	// when no message is waiting or maxUnsynced are written, so that one
	// sync covers them all. finishing counts those goroutines; finishFail
	// is the first failure one of them met.
	pipeline   bool
	unsynced   []unsynced
	finishing  sync.WaitGroup
	finishMu   sync.Mutex
	finishFail *failure
}

// unsynced is a written commit whose durability is not yet waited for.
type unsynced struct {
	ctx  context.Context
	seq  uint64
	tid  storage.TID
	wait func() error
}

// maxUnsynced bounds the commits written before their sync is started
// while messages keep arriving: their acknowledgements wait for it.
const maxUnsynced = 64

func newCore(store storage.Storage, env coreEnv, log *zap.Logger, epoch uint64, lastTID storage.TID, q *Quarantine) *core {
	c := &core{store: store, env: env, log: log, epoch: epoch, lastTID: lastTID, quarantine: q, inflight: map[uint64]*pending{}}
	c.restore, _ = store.(restorer)
	c.deferred, _ = store.(deferredRestorer)
	return c
}

// idle writes the batch of replayed transactions and starts the wait for
// the commits written: no message is waiting.
func (c *core) idle(ctx context.Context) {
	c.startWaits()
	if c.quarantine != nil || len(c.batch) == 0 {
		return
	}
	if f := c.flushBatch(ctx); f != nil && ctx.Err() == nil {
		c.fail(ctx, f)
	}
}

// startWaits waits, in a goroutine, for the durability of the commits
// written and not yet waited for, in TID order, and acknowledges them
// applied with the last one: the sync the first wait starts covers them
// all, so the later waits find them durable.
func (c *core) startWaits() {
	if len(c.unsynced) == 0 {
		return
	}
	waits := c.unsynced
	c.unsynced = nil
	tids := make([]storage.TID, len(waits))
	for i, w := range waits {
		tids[i] = w.tid
	}
	var failed unsynced
	c.afterDurable(waits[0].ctx, tids, func() error {
		for _, w := range waits {
			if err := w.wait(); err != nil {
				failed = w
				return err
			}
		}
		return nil
	}, func(err error) *failure {
		return storageFailure(failed.seq, failed.tid, fmt.Sprintf("finish at %s", failed.tid), err)
	})
}

// afterDurable runs wait in a goroutine that finishing counts. Once it
// succeeded, tids (in TID order) are acknowledged applied, with one
// message for the last; a failure, made into one by fail, is recorded for
// the driver unless ctx ended (the replica is stopping).
func (c *core) afterDurable(ctx context.Context, tids []storage.TID, wait func() error, fail func(error) *failure) {
	c.finishing.Add(1)
	go func() {
		defer c.finishing.Done()
		if err := wait(); err != nil {
			if ctx.Err() == nil {
				c.recordPipelineFailure(fail(err))
				c.env.wake()
			}
			return
		}
		for _, tid := range tids {
			c.env.applied(tid)
		}
		c.env.send(&wire.Applied{TID: uint64(tids[len(tids)-1])})
	}()
}

// flushBatch gives the batch of replayed transactions to the restorer and
// acknowledges what it made durable. A deferred restorer's sync is waited
// for in a goroutine, which acknowledges the batch applied: the next
// batch is written meanwhile.
func (c *core) flushBatch(ctx context.Context) *failure {
	if len(c.batch) == 0 {
		return nil
	}
	if c.deferred != nil {
		return c.flushBatchDeferred(ctx)
	}
	if f := c.drain(); f != nil {
		return f
	}
	batch := c.batch
	c.batch, c.batchBytes = c.batch[:0], 0
	n, err := c.restore.Restore(ctx, batch)
	for _, tx := range batch[:n] {
		c.env.applied(tx.TID)
	}
	if n > 0 {
		c.env.send(&wire.Applied{TID: uint64(batch[n-1].TID)})
	}
	var failed storage.TID
	if n < len(batch) {
		failed = batch[n].TID
	}
	clear(batch) // drops the object data
	if err != nil {
		return storageFailure(0, failed, fmt.Sprintf("restore at %s", failed), err)
	}
	return nil
}

// flushBatchDeferred is flushBatch over a deferred restorer.
func (c *core) flushBatchDeferred(ctx context.Context) *failure {
	// Earlier commits need only be written, not durable, before these:
	// a failure of theirs is seen here, or in the store's error.
	c.startWaits()
	if f := c.pipelineFailure(); f != nil {
		return f
	}
	batch := c.batch
	c.batch, c.batchBytes = c.batch[:0], 0
	n, wait, err := c.deferred.RestoreDeferred(ctx, batch)
	tids := make([]storage.TID, n)
	for i := range tids {
		tids[i] = batch[i].TID
	}
	var failed storage.TID
	if n < len(batch) {
		failed = batch[n].TID
	}
	clear(batch) // drops the object data: the store holds what it wrote
	if n > 0 {
		last := tids[n-1]
		c.afterDurable(ctx, tids, wait, func(err error) *failure {
			return storageFailure(0, last, fmt.Sprintf("restore up to %s", last), err)
		})
	}
	if err != nil {
		return storageFailure(0, failed, fmt.Sprintf("restore at %s", failed), err)
	}
	return nil
}

// pipelineFailure returns the failure of a pipelined finish, if any.
func (c *core) pipelineFailure() *failure {
	c.finishMu.Lock()
	defer c.finishMu.Unlock()
	return c.finishFail
}

// drain waits for every pipelined finish and returns the first failure:
// afterwards the store holds every transaction handed to it.
func (c *core) drain() *failure {
	c.startWaits()
	c.finishing.Wait()
	return c.pipelineFailure()
}

// checkFinished quarantines the replica if a pipelined finish failed.
func (c *core) checkFinished(ctx context.Context) {
	if f := c.pipelineFailure(); f != nil && c.quarantine == nil && ctx.Err() == nil {
		c.fail(ctx, f)
	}
}

// resetSession aborts every transaction in progress and forgets that the
// replica was live: a new session with the primary starts with hello.
func (c *core) resetSession(ctx context.Context) {
	c.abortAll(ctx)
	c.checkFinished(ctx)
	c.live, c.nextSeq = false, 0
}

// abortAll aborts every local transaction in progress. Abort errors are
// logged only: the transactions are dropped either way.
func (c *core) abortAll(ctx context.Context) {
	c.startWaits()
	c.finishing.Wait()
	ctx = context.WithoutCancel(ctx)
	for seq, p := range c.inflight {
		if err := p.txn.Abort(ctx); err != nil {
			c.log.Warn("abort", zap.Uint64("seq", seq), zap.Error(err))
		}
	}
	clear(c.inflight)
	clear(c.replayed)
	c.batch, c.batchBytes = nil, 0
	if c.replay != nil && c.replay.txn != nil {
		if err := c.replay.txn.Abort(ctx); err != nil {
			c.log.Warn("abort replay", zap.Error(err))
		}
	}
	c.replay = nil
}

// failure is a reason to quarantine: what failed, where.
type failure struct {
	seq  uint64
	tid  storage.TID
	code wire.FailureCode
	err  error
}

// protocolf returns a protocol failure.
func protocolf(seq uint64, format string, args ...any) *failure {
	return &failure{seq: seq, code: wire.FailureProtocol, err: fmt.Errorf(format, args...)}
}

// outOfOrderf returns a failure for a message out of stream order.
func outOfOrderf(seq uint64, format string, args ...any) *failure {
	return &failure{seq: seq, code: wire.FailureOutOfOrder, err: fmt.Errorf(format, args...)}
}

// storageFailure classifies a storage error.
func storageFailure(seq uint64, tid storage.TID, op string, err error) *failure {
	code := wire.FailureStorage
	switch {
	case errors.Is(err, storage.ErrChainMismatch):
		code = wire.FailureChainMismatch
	case errors.Is(err, storage.ErrConflict):
		code = wire.FailureConflict
	case errors.Is(err, storage.ErrTIDOrder):
		code = wire.FailureOutOfOrder
	}
	return &failure{seq: seq, tid: tid, code: code, err: fmt.Errorf("%s: %w", op, err)}
}

// step applies one message from the primary. It returns errStopped if ctx
// ended during a storage call, and nil otherwise: every failure has been
// turned into a quarantine.
func (c *core) step(ctx context.Context, m wire.Message) error {
	c.checkFinished(ctx)
	if c.quarantine != nil {
		return nil
	}
	f := c.apply(ctx, m)
	if f == nil {
		return nil
	}
	if ctx.Err() != nil {
		return errStopped
	}
	c.fail(ctx, f)
	return nil
}

// protocolError quarantines the replica for a message that could not be
// reassembled or decoded.
func (c *core) protocolError(ctx context.Context, err error) {
	if c.quarantine == nil {
		c.fail(ctx, &failure{code: wire.FailureProtocol, err: err})
	}
}

// fail aborts everything in progress, persists the quarantine marker and
// reports the failure to the primary.
func (c *core) fail(ctx context.Context, f *failure) {
	c.abortAll(ctx)
	if pf := c.pipelineFailure(); pf != nil {
		f = pf // the earlier failure, in stream order
	}
	q := Quarantine{Reason: f.err.Error(), Code: f.code.String(), Seq: f.seq, TID: f.tid, Time: c.env.now().UTC()}
	c.quarantine = &q
	c.log.Error("quarantined", zap.String("reason", q.Reason), zap.String("code", q.Code),
		zap.Uint64("seq", q.Seq), zap.Stringer("tid", q.TID))
	if err := c.env.saveQuarantine(q); err != nil {
		// Nothing more can be done: the replica stays quarantined in
		// memory and the primary records it too.
		c.log.Error("cannot persist the quarantine marker", zap.Error(err))
	}
	c.env.send(&wire.Failure{Seq: f.seq, TID: uint64(f.tid), Code: f.code, Text: q.Reason})
}

// apply checks the epoch and dispatches m.
func (c *core) apply(ctx context.Context, m wire.Message) *failure {
	fp, ok := m.(wire.FromPrimary)
	if !ok {
		return protocolf(0, "unexpected %q message from the primary", m.Method())
	}
	switch e := fp.PrimaryEpoch(); {
	case e < c.epoch:
		c.refusedEpoch++
		c.log.Warn("refused a message from an older epoch", zap.String("method", m.Method()),
			zap.Uint64("epoch", e), zap.Uint64("current", c.epoch))
		return nil
	case e > c.epoch:
		if err := c.env.saveEpoch(e); err != nil {
			return &failure{code: wire.FailureStorage, err: err}
		}
		c.log.Info("new primary epoch", zap.Uint64("epoch", e), zap.Uint64("previous", c.epoch))
		c.epoch = e
	}
	if len(c.batch) > 0 && !batchable(m) {
		if f := c.flushBatch(ctx); f != nil {
			return f
		}
	}
	switch m := m.(type) {
	case *wire.Begin:
		return c.begin(ctx, m)
	case *wire.Store:
		return c.storeRecord(ctx, m)
	case *wire.Vote:
		return c.vote(m)
	case *wire.Finish:
		return c.finish(ctx, m, true)
	case *wire.Abort:
		return c.abort(ctx, m)
	case *wire.Pack:
		return c.pack(ctx, m)
	case *wire.Heartbeat:
		c.primaryTID = storage.TID(m.LastTID)
		return nil
	case *wire.Live:
		return c.goLive(m)
	case *wire.Replay:
		return c.replayWhole(ctx, m)
	case *wire.Txn:
		return c.txnWhole(ctx, m)
	}
	return protocolf(0, "unexpected %q message from the primary", m.Method())
}

// replayWhole applies a replay message as the seq-0 begin, stores and
// finish it stands for. Its records are decoded first: a malformed one
// fails the message before anything of it is applied.
func (c *core) replayWhole(ctx context.Context, m *wire.Replay) *failure {
	recs, err := m.DecodeRecords()
	if err != nil {
		return &failure{tid: storage.TID(m.TID), code: wire.FailureProtocol, err: err}
	}
	if f := c.begin(ctx, &wire.Begin{Epoch: m.Epoch, User: m.User, Description: m.Description, Extension: m.Extension}); f != nil {
		return f
	}
	for _, r := range recs {
		if f := c.storeRecord(ctx, &wire.Store{Epoch: m.Epoch, OID: r.OID, Data: r.Data}); f != nil {
			return f
		}
	}
	return c.finish(ctx, &wire.Finish{Epoch: m.Epoch, TID: m.TID, Chain: m.Chain}, true)
}

// txnWhole applies a txn message as the live begin, stores, vote and
// finish it stands for. Its records are decoded first: a malformed one
// fails the message before anything of it is applied.
func (c *core) txnWhole(ctx context.Context, m *wire.Txn) *failure {
	if m.Seq == 0 {
		return outOfOrderf(0, "txn message with seq 0 (a replayed transaction comes as replay)")
	}
	recs, err := m.DecodeRecords()
	if err != nil {
		return &failure{seq: m.Seq, tid: storage.TID(m.TID), code: wire.FailureProtocol, err: err}
	}
	if c.restore != nil {
		return c.txnRestored(ctx, m, recs)
	}
	if f := c.begin(ctx, &wire.Begin{Epoch: m.Epoch, Seq: m.Seq, User: m.User, Description: m.Description, Extension: m.Extension}); f != nil {
		return f
	}
	for _, r := range recs {
		if f := c.storeRecord(ctx, &wire.Store{Epoch: m.Epoch, Seq: m.Seq, OID: r.OID, Serial: r.Serial, Data: r.Data}); f != nil {
			return f
		}
	}
	if f := c.vote(&wire.Vote{Epoch: m.Epoch, Seq: m.Seq}); f != nil {
		return f
	}
	return c.finish(ctx, &wire.Finish{Epoch: m.Epoch, Seq: m.Seq, TID: m.TID, Chain: m.Chain}, m.WantsReceived())
}

// txnRestored adds a whole live transaction to the batch for the
// restorer, like a finished replay: consecutive ones are written together
// and share one sync. The restorer checks each against its chain value,
// not its stores' serials: the chain covers the whole history before it,
// so a replica whose objects differ from the primary's fails that check
// (or an earlier one) instead.
func (c *core) txnRestored(ctx context.Context, m *wire.Txn, recs []wire.TxnRecord) *failure {
	switch {
	case !c.live || m.Seq < c.nextSeq:
		return nil // it is replayed after its finish
	case c.inflight[m.Seq] != nil:
		return outOfOrderf(m.Seq, "second begin of transaction seq %d", m.Seq)
	}
	tx := &storage.Transaction{
		Meta:    storage.TxnMeta{User: m.User, Description: m.Description, Extension: m.Extension},
		Records: make([]storage.Record, len(recs)),
	}
	for i, r := range recs {
		tx.Records[i] = storage.Record{OID: storage.OID(r.OID), Data: r.Data}
	}
	if m.WantsReceived() {
		c.env.send(&wire.Received{TID: m.TID})
	}
	return c.finishRestored(ctx, tx, storage.TID(m.TID), storage.Checksum(m.Chain))
}

// batchable reports whether m belongs to a replayed transaction, is a
// whole live transaction or is a heartbeat: the messages a batch for the
// restorer is not written for.
func batchable(m wire.Message) bool {
	switch m := m.(type) {
	case *wire.Begin:
		return m.Seq == 0
	case *wire.Store:
		return m.Seq == 0
	case *wire.Finish:
		return m.Seq == 0
	case *wire.Replay, *wire.Txn, *wire.Heartbeat:
		return true
	}
	return false
}

// txnFor returns the transaction a store, vote, finish or abort belongs to,
// or nil if the message is to be ignored: a live transaction before the
// replica is live, or one the primary sends again as a replay because the
// replica missed its begin.
func (c *core) txnFor(method string, seq uint64) (*pending, *failure) {
	if seq == 0 {
		if c.replay == nil {
			return nil, outOfOrderf(0, "replayed %s without its begin", method)
		}
		return c.replay, nil
	}
	if p := c.inflight[seq]; p != nil {
		return p, nil
	}
	if !c.live || seq < c.nextSeq {
		return nil, nil
	}
	return nil, outOfOrderf(seq, "%s of transaction seq %d without its begin", method, seq)
}

func (c *core) begin(ctx context.Context, m *wire.Begin) *failure {
	if m.Seq == 0 {
		if c.replay != nil {
			return outOfOrderf(0, "replayed begin while another replayed transaction is open")
		}
	} else {
		if !c.live || m.Seq < c.nextSeq {
			return nil
		}
		if c.inflight[m.Seq] != nil {
			return outOfOrderf(m.Seq, "second begin of transaction seq %d", m.Seq)
		}
	}
	meta := storage.TxnMeta{User: m.User, Description: m.Description, Extension: m.Extension}
	if m.Seq == 0 && c.restore != nil && !c.live {
		c.replay = &pending{restored: &storage.Transaction{Meta: meta}}
		return nil
	}
	txn, err := c.store.Begin(ctx, meta)
	if err != nil {
		return storageFailure(m.Seq, 0, "begin", err)
	}
	p := &pending{seq: m.Seq, txn: txn}
	if m.Seq == 0 {
		c.replay = p
	} else {
		c.inflight[m.Seq] = p
	}
	return nil
}

func (c *core) storeRecord(ctx context.Context, m *wire.Store) *failure {
	p, f := c.txnFor(m.Method(), m.Seq)
	if p == nil {
		return f
	}
	if p.voted {
		return outOfOrderf(m.Seq, "store of %s after the vote of transaction seq %d", storage.OID(m.OID), m.Seq)
	}
	if p.restored != nil {
		p.restored.Records = append(p.restored.Records, storage.Record{OID: storage.OID(m.OID), Data: m.Data})
		return nil
	}
	serial := storage.TID(m.Serial)
	if m.Seq == 0 {
		// A replay carries no serial: the record replaces whatever is
		// current here, which, when the histories agree, is what was
		// current on the primary. The chain check at finish proves it.
		cur, f := c.replayedSerial(ctx, storage.OID(m.OID))
		if f != nil {
			return f
		}
		serial = cur
		p.oids = append(p.oids, storage.OID(m.OID))
	}
	if err := p.txn.Store(ctx, storage.OID(m.OID), serial, m.Data); err != nil {
		return storageFailure(m.Seq, 0, fmt.Sprintf("store %s", storage.OID(m.OID)), err)
	}
	return nil
}

// replayedSerial returns the current serial of oid for a replayed store:
// the TID of the last replayed transaction that stored it while the
// pipeline still holds it, else what the store has committed. Neither
// waits for a pipelined finish to be durable, so replays pipeline like
// live finishes.
func (c *core) replayedSerial(ctx context.Context, oid storage.OID) (storage.TID, *failure) {
	if tid, ok := c.replayed[oid]; ok && !c.live {
		return tid, nil
	}
	if c.live || len(c.replayed) >= maxReplayed {
		// Live finishes are not recorded here, and memory is bounded:
		// once every finish is durable the store answers for every
		// object.
		if f := c.drain(); f != nil {
			return 0, f
		}
		clear(c.replayed)
	}
	_, cur, err := c.store.Load(ctx, oid)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, storageFailure(0, 0, fmt.Sprintf("load %s for a replayed store", oid), err)
	}
	return cur, nil
}

// vote only records the vote: the local commit lock is taken at finish,
// because votes of later transactions may precede the finish of an
// earlier one. Nothing is acknowledged: the primary's own vote decides,
// and the finish's received acknowledgement covers the vote.
func (c *core) vote(m *wire.Vote) *failure {
	if m.Seq == 0 {
		return outOfOrderf(0, "vote in a replayed transaction")
	}
	p, f := c.txnFor(m.Method(), m.Seq)
	if p == nil {
		return f
	}
	if p.voted {
		return outOfOrderf(m.Seq, "second vote of transaction seq %d", m.Seq)
	}
	p.voted = true
	return nil
}

// finish applies the finish m of a transaction, acknowledging it received
// first if ackReceived is set.
func (c *core) finish(ctx context.Context, m *wire.Finish, ackReceived bool) *failure {
	p, f := c.txnFor(m.Method(), m.Seq)
	if p == nil {
		return f
	}
	tid := storage.TID(m.TID)
	if m.Seq != 0 && !p.voted {
		return outOfOrderf(m.Seq, "finish of transaction seq %d (%s) before its vote", m.Seq, tid)
	}
	c.forget(p)
	if ackReceived {
		c.env.send(&wire.Received{TID: m.TID})
	}
	if p.restored != nil {
		return c.finishRestored(ctx, p.restored, tid, storage.Checksum(m.Chain))
	}
	if err := p.txn.Vote(ctx); err != nil {
		p.txn.Abort(context.WithoutCancel(ctx))
		return storageFailure(m.Seq, tid, fmt.Sprintf("vote of %s", tid), err)
	}
	// A previous commit whose sync failed has recorded its failure: it is
	// seen here and nothing is committed on top of it.
	if f := c.pipelineFailure(); f != nil {
		p.txn.Abort(context.WithoutCancel(ctx))
		return f
	}
	c.lastTID = tid
	if m.Seq == 0 {
		if c.replayed == nil {
			c.replayed = make(map[storage.OID]storage.TID)
		}
		for _, oid := range p.oids {
			c.replayed[oid] = tid
		}
	}
	chain := storage.Checksum(m.Chain)
	if !c.pipeline {
		return c.commit(ctx, p.txn, m.Seq, tid, chain)
	}
	// The commit is written here, in stream order, and only the wait for
	// its sync is left for later (startWaits), so the next transactions'
	// writes overlap this one's sync (group commit).
	_, durable, err := storage.FinishAtDeferred(ctx, p.txn, tid, chain)
	if err != nil {
		p.txn.Abort(context.WithoutCancel(ctx))
		return storageFailure(m.Seq, tid, fmt.Sprintf("finish at %s", tid), err)
	}
	c.unsynced = append(c.unsynced, unsynced{ctx: ctx, seq: m.Seq, tid: tid, wait: durable})
	if len(c.unsynced) >= maxUnsynced {
		c.startWaits()
	}
	return nil
}

// committed reports the durable commit of tid.
func (c *core) committed(tid storage.TID) {
	c.env.applied(tid)
	c.env.send(&wire.Applied{TID: uint64(tid)})
}

// recordPipelineFailure keeps the first failure of a pipelined finish.
func (c *core) recordPipelineFailure(f *failure) {
	c.finishMu.Lock()
	if c.finishFail == nil {
		c.finishFail = f
	}
	c.finishMu.Unlock()
}

// finishRestored adds a finished replay to the batch for the restorer,
// and writes the batch once it is full.
func (c *core) finishRestored(ctx context.Context, tx *storage.Transaction, tid storage.TID, chain storage.Checksum) *failure {
	tx.TID, tx.Chain = tid, chain
	c.lastTID = tid
	c.batch = append(c.batch, *tx)
	for _, r := range tx.Records {
		c.batchBytes += len(r.Data)
	}
	if len(c.batch) >= maxRestoreTxns || c.batchBytes >= maxRestoreBytes {
		return c.flushBatch(ctx)
	}
	return nil
}

// commit finishes a voted transaction at tid, or records and returns the
// failure (before the abort releases the commit lock).
func (c *core) commit(ctx context.Context, txn storage.Txn, seq uint64, tid storage.TID, chain storage.Checksum) *failure {
	if _, err := txn.FinishAt(ctx, tid, chain); err != nil {
		f := storageFailure(seq, tid, fmt.Sprintf("finish at %s", tid), err)
		txn.Abort(context.WithoutCancel(ctx))
		return f
	}
	c.committed(tid)
	return nil
}

func (c *core) abort(ctx context.Context, m *wire.Abort) *failure {
	if m.Seq == 0 {
		return outOfOrderf(0, "abort of a replayed transaction")
	}
	p, f := c.txnFor(m.Method(), m.Seq)
	if p == nil {
		return f
	}
	c.forget(p)
	if err := p.txn.Abort(ctx); err != nil {
		return storageFailure(m.Seq, 0, "abort", err)
	}
	return nil
}

// forget removes p from the transactions in progress.
func (c *core) forget(p *pending) {
	if p == c.replay {
		c.replay = nil
	} else {
		delete(c.inflight, p.seq)
	}
}

// pack applies a replicated pack. Before the replica is live it is ignored:
// the replay that follows comes from the packed store anyway.
func (c *core) pack(ctx context.Context, m *wire.Pack) *failure {
	if !c.live {
		return nil
	}
	if f := c.drain(); f != nil {
		return f
	}
	if err := c.store.Pack(ctx, storage.TID(m.Before)); err != nil {
		return storageFailure(0, 0, fmt.Sprintf("pack before %s", storage.TID(m.Before)), err)
	}
	return nil
}

func (c *core) goLive(m *wire.Live) *failure {
	if f := c.drain(); f != nil {
		return f
	}
	switch {
	case c.live:
		return protocolf(0, "second live message in one session")
	case m.NextSeq == 0:
		return protocolf(0, "live with next seq 0 (live seqs start at 1)")
	case c.replay != nil:
		return outOfOrderf(0, "live in the middle of a replayed transaction")
	case storage.TID(m.TID) != c.lastTID:
		return outOfOrderf(0, "live after %s but the replica's last transaction is %s", storage.TID(m.TID), c.lastTID)
	}
	c.live, c.nextSeq = true, m.NextSeq
	c.log.Info("live", zap.Uint64("next_seq", m.NextSeq), zap.Stringer("tid", c.lastTID))
	return nil
}
