package primary

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// Catch-up tuning: replay in rounds without blocking commits until a round
// replays at most liveThreshold transactions (or maxCatchUpRounds rounds
// ran), then replay the rest between two finish broadcasts and go live.
const (
	liveThreshold    = 64
	maxCatchUpRounds = 16
)

// receiveLoop handles the group's events: views and the replicas'
// messages.
func (p *Primary) receiveLoop() {
	for {
		ev, err := p.group.Receive(p.ctx)
		if err != nil {
			return // closed
		}
		m, err := p.recv.Receive(ev)
		switch ev.Kind {
		case gcs.EventView:
			p.onView(ev.View)
		case gcs.EventNotice:
			p.log.Warn("group notice", zap.Error(ev.Err))
		}
		if err != nil {
			p.log.Warn("bad message from a replica", zap.String("member", string(ev.Origin)), zap.Error(err))
		} else if m != nil {
			p.handle(ev.Origin, m)
		}
		ev.Release() // replica messages carry no payload the Primary keeps
	}
}

// handle acts on one message from a replica.
func (p *Primary) handle(from gcs.MemberID, m wire.Message) {
	switch m := m.(type) {
	case *wire.Hello:
		p.onHello(from, m)
	case *wire.Received:
		p.onAck(from, storage.TID(m.TID), false)
	case *wire.Applied:
		p.onAck(from, storage.TID(m.TID), true)
	case *wire.Voted:
		// The primary does not wait for votes: its own vote decided.
	case *wire.Failure:
		p.onFailure(from, m)
	default:
		p.protocolErrors.Add(1)
		p.log.Warn("unexpected message from a replica", zap.String("member", string(from)), zap.String("method", m.Method()))
	}
}

// onView marks replicas whose member left the view as disconnected.
func (p *Primary) onView(v gcs.View) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for member, r := range p.members {
		if v.Contains(member) {
			continue
		}
		delete(p.members, member)
		if r.member != member {
			continue
		}
		r.member = ""
		p.stopCatchUpLocked(r)
		if r.state != StateQuarantined {
			r.state = StateDisconnected
			p.log.Info("replica disconnected", zap.String("replica", r.name), zap.String("member", string(member)))
		}
		p.dirty = true
		p.notifyLocked()
	}
}

// stopCatchUpLocked cancels r's catch-up, if any. p.mu is held.
func (p *Primary) stopCatchUpLocked(r *replica) {
	if r.catchUp != nil {
		r.catchUp.cancel()
	}
}

// onAck records a replica's acknowledgement.
func (p *Primary) onAck(from gcs.MemberID, tid storage.TID, applied bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.members[from]
	if r == nil {
		return
	}
	r.lastReceived = max(r.lastReceived, tid)
	if applied {
		r.lastApplied = max(r.lastApplied, tid)
	}
	p.dirty = true
	if r.state == StateHealthy {
		p.ackedLocked(tid, applied)
	}
}

// onFailure quarantines a replica that reported a failure.
func (p *Primary) onFailure(from gcs.MemberID, f *wire.Failure) {
	p.mu.Lock()
	r := p.members[from]
	p.mu.Unlock()
	if r == nil {
		p.log.Warn("failure report from an unknown member", zap.String("member", string(from)), zap.String("text", f.Text))
		return
	}
	p.quarantine(r, Quarantine{
		Reason: fmt.Sprintf("replica failed to apply seq %d: %s", f.Seq, f.Text),
		Code:   f.Code.String(),
		TID:    storage.TID(f.TID),
	})
}

// quarantine records q for r, stops counting and serving it, and persists
// the registry at once.
func (p *Primary) quarantine(r *replica, q Quarantine) {
	q.Time = p.cfg.Now().UTC()
	p.mu.Lock()
	if r.state == StateQuarantined {
		p.mu.Unlock()
		return
	}
	r.state, r.quarantine = StateQuarantined, &q
	p.stopCatchUpLocked(r)
	p.dirty = true
	p.notifyLocked()
	p.mu.Unlock()
	p.quarantines.Add(1)
	p.log.Error("replica quarantined", zap.String("replica", r.name), zap.String("code", q.Code),
		zap.Stringer("tid", q.TID), zap.String("reason", q.Reason))
	_ = p.saveRegistry()
}

// onHello checks a replica's greeting and starts its catch-up, or
// quarantines it.
func (p *Primary) onHello(from gcs.MemberID, h *wire.Hello) {
	if h.Node == "" {
		p.protocolErrors.Add(1)
		p.log.Warn("hello without a node name", zap.String("member", string(from)))
		return
	}
	p.mu.Lock()
	r := p.replicas[h.Node]
	if r == nil {
		r = &replica{name: h.Node}
		p.replicas[h.Node] = r
	}
	if r.member != "" && r.member != from {
		delete(p.members, r.member) // an older session of the same replica
	}
	r.member = from
	p.members[from] = r
	p.stopCatchUpLocked(r)
	state := r.state
	p.dirty = true
	p.mu.Unlock()
	log := p.log.With(zap.String("replica", h.Node), zap.String("member", string(from)),
		zap.Uint64("epoch", h.Epoch), zap.Stringer("last_tid", storage.TID(h.LastTID)))
	if state == StateQuarantined {
		log.Info("hello from a quarantined replica: it stays quarantined")
		return
	}
	q, err := p.judgeHello(h)
	if err != nil {
		log.Error("cannot check the replica's hello", zap.Error(err))
		p.mu.Lock()
		r.state = StateDisconnected // until it says hello again
		p.notifyLocked()
		p.mu.Unlock()
		return
	}
	if q != nil {
		p.quarantine(r, *q)
		return
	}
	log.Info("replica catching up")
	p.mu.Lock()
	defer p.mu.Unlock()
	r.state = StateCatchingUp
	r.lastReceived, r.lastApplied = storage.TID(h.LastTID), storage.TID(h.LastTID)
	p.notifyLocked()
	ctx, cancel := context.WithCancel(p.ctx)
	prev := r.catchUp
	cu := &catchUp{cancel: cancel, done: make(chan struct{})}
	r.catchUp = cu
	p.wg.Go(func() {
		defer close(cu.done)
		defer cancel()
		if prev != nil {
			<-prev.done // its replay must not interleave with this one
		}
		p.runCatchUp(ctx, r, from, storage.TID(h.LastTID))
	})
}

// judgeHello decides whether a replica may catch up from its hello: it
// returns the quarantine to impose, or nil. An error is the primary's own
// storage failing.
func (p *Primary) judgeHello(h *wire.Hello) (*Quarantine, error) {
	if h.Epoch > p.epoch {
		return &Quarantine{
			Reason: fmt.Sprintf("replica has seen epoch %d, newer than this primary's %d: it follows a newer primary", h.Epoch, p.epoch),
			Code:   CodeNewerEpoch,
		}, nil
	}
	tid := storage.TID(h.LastTID)
	if tid <= storage.TID(p.lastSent.Load()) {
		if err := p.waitPublished(p.ctx, tid); err != nil {
			return nil, err
		}
	}
	chain, err := p.inner.Chain(p.ctx, tid)
	if errors.Is(err, storage.ErrNotFound) {
		return &Quarantine{
			Reason: fmt.Sprintf("divergent: replica has tid %s the primary does not have", tid),
			Code:   CodeDivergent, TID: tid,
		}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chain at %s: %w", tid, err)
	}
	if chain != storage.Checksum(h.Chain) {
		return &Quarantine{
			Reason: fmt.Sprintf("divergent: chain differs at tid %s (replica %s, primary %s)", tid, wire.Chain(h.Chain), chain),
			Code:   CodeDivergent, TID: tid,
		}, nil
	}
	return nil, nil
}

// runCatchUp replays history after from to a replica, then switches it to
// the live stream between two finish broadcasts.
func (p *Primary) runCatchUp(ctx context.Context, r *replica, member gcs.MemberID, from storage.TID) {
	for range maxCatchUpRounds {
		target := storage.TID(p.lastSent.Load())
		n, err := p.replay(ctx, member, from, target)
		if err != nil {
			p.catchUpFailed(member, err)
			return
		}
		from = target
		if n <= liveThreshold {
			break
		}
	}
	// No finish, abort or pack is broadcast and no transaction begins
	// while the replica goes live.
	p.ts.lock()
	defer p.ts.unlock()
	p.beginMu.Lock()
	defer p.beginMu.Unlock()
	target := max(from, storage.TID(p.lastSent.Load()))
	if _, err := p.replay(ctx, member, from, target); err != nil {
		p.catchUpFailed(member, err)
		return
	}
	p.mu.Lock()
	if ctx.Err() != nil || r.member != member || r.state != StateCatchingUp {
		p.mu.Unlock()
		return
	}
	next := p.seq + 1
	for _, f := range p.inflight {
		f.missed = append(f.missed, member)
	}
	r.state = StateHealthy
	p.dirty = true
	p.notifyLocked()
	p.mu.Unlock()
	if err := p.send(member, &wire.Live{Epoch: p.epoch, NextSeq: next, TID: uint64(target)}); err != nil {
		p.catchUpFailed(member, err)
		return
	}
	p.log.Info("replica live", zap.String("replica", r.name), zap.String("member", string(member)),
		zap.Stringer("tid", target), zap.Uint64("next_seq", next))
}

// catchUpFailed reports a replay that could not be sent. A member that left
// is marked disconnected by its view change; anything else leaves the
// replica disconnected until it says hello again.
func (p *Primary) catchUpFailed(member gcs.MemberID, err error) {
	if p.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.members[member]
	if r == nil {
		return
	}
	p.log.Warn("catch-up failed", zap.String("replica", r.name), zap.String("member", string(member)), zap.Error(err))
	if r.member == member && r.state != StateQuarantined {
		r.state = StateDisconnected
		p.stopCatchUpLocked(r)
		p.dirty = true
		p.notifyLocked()
	}
}

// replay sends the committed transactions with from < TID <= to to member,
// each whole as a seq-0 transaction, and returns how many it sent. ctx is
// checked between transactions only: a transaction is never cut short.
func (p *Primary) replay(ctx context.Context, member gcs.MemberID, from, to storage.TID) (int, error) {
	if to <= from {
		return 0, nil
	}
	if err := p.waitPublished(ctx, to); err != nil {
		return 0, fmt.Errorf("replay after %s: %w", from, err)
	}
	n := 0
	for tx, err := range storage.Transactions(ctx, p.inner, from+1, to) {
		if err != nil {
			return n, fmt.Errorf("replay after %s: %w", from, err)
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := p.sendReplay(member, tx); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// replayInline bounds the object data of a transaction replayed as one
// replay message: copying that much into the message costs less than
// sending begin, stores and finish; larger ones travel without a copy.
const replayInline = 64 << 10

// sendReplay sends one committed transaction as one replay message, or, if
// it holds more than replayInline bytes of data, as begin, stores and
// finish with seq 0 (no vote).
func (p *Primary) sendReplay(member gcs.MemberID, tx *storage.Transaction) error {
	size := 0
	for _, rec := range tx.Records {
		size += len(rec.Data)
	}
	if size <= replayInline {
		records := make([]byte, 0, size+wire.ReplayRecordHead*len(tx.Records))
		for _, rec := range tx.Records {
			records = wire.AppendReplayRecord(records, uint64(rec.OID), rec.Data)
		}
		if err := p.send(member, &wire.Replay{Epoch: p.epoch, TID: uint64(tx.TID), Chain: wire.Chain(tx.Chain),
			User: tx.Meta.User, Description: tx.Meta.Description, Extension: tx.Meta.Extension, Records: records}); err != nil {
			return err
		}
		p.replayed.Add(1)
		return nil
	}
	if err := p.send(member, &wire.Begin{Epoch: p.epoch, User: tx.Meta.User, Description: tx.Meta.Description, Extension: tx.Meta.Extension}); err != nil {
		return err
	}
	for _, rec := range tx.Records {
		if err := p.send(member, &wire.Store{Epoch: p.epoch, OID: uint64(rec.OID), Data: rec.Data}); err != nil {
			return err
		}
	}
	if err := p.send(member, &wire.Finish{Epoch: p.epoch, TID: uint64(tx.TID), Chain: wire.Chain(tx.Chain)}); err != nil {
		return err
	}
	p.replayed.Add(1)
	return nil
}

// waitPublished waits until the local store shows the transaction tid. A
// finish is broadcast before its commit is durable, and the store shows
// it only then, so a replica may hold a TID the store does not show yet
// for the length of one sync.
func (p *Primary) waitPublished(ctx context.Context, tid storage.TID) error {
	wait := 50 * time.Microsecond
	for {
		last, err := p.inner.LastTransaction(ctx)
		if err != nil {
			return err
		}
		if last >= tid {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
}
