package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/repld/repld/internal/datadir"

	"go.uber.org/zap"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// Errors WaitFor returns.
var (
	// ErrQuarantined: the replica is quarantined and applies nothing more.
	ErrQuarantined = errors.New("replica: quarantined")
	// ErrClosed: the replica was closed.
	ErrClosed = errors.New("replica: closed")
)

// Replica is a running replica node: it follows the primary's stream into
// its local store and serves reads from it.
type Replica struct {
	cfg   Config
	log   *zap.Logger
	store storage.Storage
	view  storage.Storage
	recv  *msgstream.Receiver
	core  *core // owned by the run goroutine

	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// status is what Status reports apart from the receive counters; the
	// run goroutine publishes it.
	status Status
	// changed is closed and replaced whenever status.LastTID or the
	// quarantine changes, waking WaitFor.
	changed chan struct{}
	closed  bool

	// The session's sender and the primary's member id, under mu: pipelined
	// finishes send applied acknowledgements from their goroutines.
	sender    *msgstream.Sender
	primaryID gcs.MemberID
	// appliedSent is the highest TID acknowledged as applied and
	// appliedMax the highest applied, under mu; ackSending is set while one
	// finishing goroutine sends applied acknowledgements for the others.
	appliedSent, appliedMax storage.TID
	ackSending              bool
	// wakeRun interrupts the run goroutine's wait for the next event,
	// under mu.
	wakeRun context.CancelFunc

	// Owned by the run goroutine: its context, the acknowledgements
	// waiting to be sent, and whether the coordinator is unreachable.
	ctx   context.Context
	group *gcs.Group // the session's group
	// received is the TID of the newest finish not yet acknowledged
	// (0 if none), receivedN how many finishes it covers.
	received     uint64
	receivedN    int
	disconnected bool
}

// Open starts a replica: it reads the quarantine marker and the epoch from
// DataDir and the last transaction from Store, then joins the primary's
// group in the background (retrying while the primary is unreachable) and
// applies its stream. A replica with a marker stays quarantined. ctx bounds
// the opening only.
func Open(ctx context.Context, cfg Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("replica: data directory: %w", err)
	}
	q, err := readMarker(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	epoch, err := datadir.ReadEpoch(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	last, err := cfg.Store.LastTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("replica: last transaction of the local store: %w", err)
	}
	recv, err := msgstream.NewReceiver(msgstream.Config{Fragment: fragment.Config{MaxFragment: cfg.Fragment}})
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	log := cfg.Logger.Named("replica").With(zap.String("name", cfg.Name))
	r := &Replica{
		cfg: cfg, log: log, store: cfg.Store, view: storage.ReadOnly(cfg.Store), recv: recv,
		done: make(chan struct{}), changed: make(chan struct{}),
		status: Status{Name: cfg.Name, Role: "replica", Epoch: epoch, LastTID: last, State: StateDisconnected,
			Primary: cfg.Primary, Quarantine: q},
	}
	if q != nil {
		r.status.State = StateQuarantined
		log.Warn("starting quarantined", zap.String("reason", q.Reason), zap.String("code", q.Code))
	}
	r.core = newCore(cfg.Store, r, log, epoch, last, q)
	r.core.pipeline = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel, r.ctx = cancel, runCtx
	go r.run(runCtx)
	return r, nil
}

// ReadView returns the read-only view clients read through: every read of
// the local store, and storage.ErrReadOnly for every write.
func (r *Replica) ReadView() storage.Storage { return r.view }

// Status returns a snapshot of the replica's state.
func (r *Replica) Status() Status {
	r.mu.Lock()
	s := r.status
	r.mu.Unlock()
	if s.Quarantine != nil {
		q := *s.Quarantine
		s.Quarantine = &q
	}
	c := r.recv.Counters()
	s.Counters.MessagesReceived, s.Counters.BytesReceived = c.Messages, c.Bytes
	s.Counters.FragmentErrors, s.Counters.ProtocolErrors = c.FragmentErrors, c.ProtocolErrors
	s.LagSeconds = lagSeconds(s.LastTID, s.PrimaryLastTID)
	return s
}

// WaitFor returns once transaction tid (or a later one) is applied, or
// with ErrQuarantined, ErrClosed or ctx's error when it never will be.
func (r *Replica) WaitFor(ctx context.Context, tid storage.TID) error {
	for {
		r.mu.Lock()
		last, q, closed, changed := r.status.LastTID, r.status.Quarantine, r.closed, r.changed
		r.mu.Unlock()
		switch {
		case last >= tid:
			return nil
		case q != nil:
			return fmt.Errorf("%w (%s) before %s was applied", ErrQuarantined, q.Reason, tid)
		case closed:
			return ErrClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("replica: wait for %s: %w", tid, ctx.Err())
		}
	}
}

// Close stops the replica: it leaves the group, aborts the transactions in
// progress, stops every goroutine and closes the local store.
func (r *Replica) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.wakeLocked()
	r.mu.Unlock()
	r.cancel()
	<-r.done
	r.view.Close()
	return r.store.Close()
}

// wakeLocked wakes every WaitFor; r.mu is held.
func (r *Replica) wakeLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// publish copies the core's state into the status.
func (r *Replica) publish() {
	c := r.core
	state := StateCatchingUp
	switch {
	case c.quarantine != nil:
		state = StateQuarantined
	case r.disconnected:
		state = StateDisconnected
	case c.live:
		state = StateLive
	}
	r.mu.Lock()
	s := &r.status
	s.State, s.Epoch, s.PrimaryLastTID = state, c.epoch, c.primaryTID
	s.Counters.RefusedEpoch = c.refusedEpoch
	if c.quarantine != nil && s.Quarantine == nil {
		q := *c.quarantine
		s.Quarantine = &q
		r.wakeLocked()
	}
	r.mu.Unlock()
}

// run joins the primary's group and follows it until ctx ends.
func (r *Replica) run(ctx context.Context) {
	defer close(r.done)
	defer r.core.resetSession(ctx)
	backoff := r.cfg.JoinBackoffMin
	for ctx.Err() == nil {
		jctx, cancel := context.WithTimeout(ctx, r.cfg.JoinTimeout)
		g, err := r.cfg.Node.Join(jctx, r.cfg.Group, r.cfg.Primary)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Info("cannot join the primary's group; retrying", zap.String("primary", r.cfg.Primary),
					zap.Duration("backoff", backoff), zap.Error(err))
			}
			sleep(ctx, backoff)
			backoff = min(2*backoff, r.cfg.JoinBackoffMax)
			continue
		}
		backoff = r.cfg.JoinBackoffMin
		err = r.session(ctx, g)
		g.Close()
		r.disconnected = true
		r.core.resetSession(ctx)
		r.publish()
		if ctx.Err() == nil {
			r.log.Info("left the primary's group; joining again", zap.Error(err))
			sleep(ctx, backoff)
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// session follows one membership of the group until it closes or ctx ends.
// Every new session of the member (the first view, and each after a notice
// that messages may be lost) restarts with hello.
func (r *Replica) session(ctx context.Context, g *gcs.Group) error {
	sender, err := msgstream.NewSender(g, msgstream.Config{Fragment: fragment.Config{MaxFragment: r.cfg.Fragment}})
	if err != nil {
		return err
	}
	r.setSession(sender, "")
	r.group = g
	r.received, r.receivedN = 0, 0
	r.recv.Reset()
	needHello := true
	// A cancelled context makes Receive return only what is already
	// queued: when nothing is, the batch of replayed transactions is
	// written and the batched acknowledgements go out before the replica
	// blocks, in a wait that a failed pipelined finish can interrupt.
	poll, cancel := context.WithCancel(ctx)
	cancel()
	for {
		ev, err := g.Receive(poll)
		if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
			r.core.idle(ctx)
			r.publish()
			r.flush(ctx)
			ev, err = r.receiveWakeable(ctx, g)
			if err != nil && ctx.Err() == nil && errors.Is(err, context.Canceled) {
				r.core.checkFinished(ctx)
				r.publish()
				continue
			}
		}
		if err != nil {
			return err
		}
		switch ev.Kind {
		case gcs.EventView:
			r.recv.Receive(ev) // drops the streams of members that left
			r.disconnected = false
			if len(ev.View.Members) == 0 {
				continue
			}
			if p := ev.View.Members[0]; needHello || p != r.primary() {
				needHello = false
				r.core.resetSession(ctx)
				r.setSession(sender, p)
				r.recv.Reset()
				r.hello(ctx)
			}
		case gcs.EventNotice:
			r.recv.Receive(ev) // the stream restarts
			if errors.Is(ev.Err, gcs.ErrGroupClosed) {
				return ev.Err
			}
			r.disconnected = true
			if !errors.Is(ev.Err, gcs.ErrCoordinatorLost) {
				// Messages may be lost: the member joins afresh and
				// this session's transactions are incomplete.
				r.core.resetSession(ctx)
				needHello = true
			}
			r.log.Info("group notice", zap.Error(ev.Err))
		case gcs.EventMessage:
			r.disconnected = false
			if ev.Origin != r.primary() {
				continue // only the primary speaks to replicas
			}
			if err := r.message(ctx, ev); errors.Is(err, errStopped) {
				return err
			}
		}
		r.publish()
	}
}

// receiveWakeable waits for the next event; wake interrupts it with
// context.Canceled.
func (r *Replica) receiveWakeable(ctx context.Context, g *gcs.Group) (gcs.Event, error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.wakeRun = cancel
	r.mu.Unlock()
	if r.core.pipelineFailure() != nil && r.core.quarantine == nil {
		cancel() // failed before wake could reach this wait
	}
	ev, err := g.Receive(wctx)
	r.mu.Lock()
	r.wakeRun = nil
	r.mu.Unlock()
	return ev, err
}

// wake implements coreEnv.
func (r *Replica) wake() {
	r.mu.Lock()
	if r.wakeRun != nil {
		r.wakeRun()
	}
	r.mu.Unlock()
}

// setSession records the session's sender and primary member.
func (r *Replica) setSession(s *msgstream.Sender, primary gcs.MemberID) {
	r.mu.Lock()
	r.sender, r.primaryID = s, primary
	r.mu.Unlock()
}

// primary returns the primary's member id in this session.
func (r *Replica) primary() gcs.MemberID {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.primaryID
}

// sendTo sends m to the primary. A failed send is logged: the session is
// ending, and the next one starts with hello.
func (r *Replica) sendTo(ctx context.Context, m wire.Message) {
	r.mu.Lock()
	s, to := r.sender, r.primaryID
	r.mu.Unlock()
	if s == nil || to == "" {
		return
	}
	if err := s.Send(ctx, to, m); err != nil && ctx.Err() == nil {
		r.log.Info("send to the primary", zap.String("method", m.Method()), zap.Error(err))
	}
}

// message reassembles and applies one message event from the primary.
func (r *Replica) message(ctx context.Context, ev gcs.Event) error {
	m, err := r.recv.Receive(ev)
	if err != nil {
		r.core.protocolError(ctx, err)
		return nil
	}
	if m == nil {
		return nil
	}
	return r.core.step(ctx, m)
}

// hello introduces the replica to the primary: its epoch, last transaction
// and chain value there. A quarantined replica also repeats its failure, so
// a primary that lost its registry learns of it.
func (r *Replica) hello(ctx context.Context) {
	c := r.core
	last, err := r.store.LastTransaction(ctx)
	var chain storage.Checksum
	if err == nil {
		chain, err = r.store.Chain(ctx, last)
	}
	if err != nil {
		if ctx.Err() == nil && c.quarantine == nil {
			c.fail(ctx, storageFailure(0, last, "last transaction and its chain", err))
		}
		return
	}
	c.lastTID = last
	r.log.Info("hello", zap.String("primary", string(r.primary())), zap.Stringer("last_tid", last),
		zap.Uint64("epoch", c.epoch))
	r.sendNow(ctx, &wire.Hello{Node: r.cfg.Name, Epoch: c.epoch, LastTID: uint64(c.lastTID), Chain: wire.Chain(chain)})
	if q := c.quarantine; q != nil {
		r.sendNow(ctx, &wire.Failure{Seq: q.Seq, TID: uint64(q.TID), Code: codeOf(q.Code), Text: q.Reason})
	}
}

// codeOf returns the failure code named name, FailureUnknown if none is.
func codeOf(name string) wire.FailureCode {
	for c := wire.FailureUnknown; c <= wire.FailureOutOfOrder; c++ {
		if c.String() == name {
			return c
		}
	}
	return wire.FailureUnknown
}

// sendNow sends m to the primary after the acknowledgements queued before
// it.
func (r *Replica) sendNow(ctx context.Context, m wire.Message) {
	r.flush(ctx)
	r.sendTo(ctx, m)
}

// receivedBatch bounds the finishes a received acknowledgement waits for
// while messages keep arriving.
const receivedBatch = 16

// flush sends the queued received acknowledgement.
func (r *Replica) flush(ctx context.Context) {
	if r.received != 0 {
		r.sendTo(ctx, &wire.Received{TID: r.received})
	}
	r.received, r.receivedN = 0, 0
}

// send implements coreEnv. Received goes out at once when no other
// message is waiting, and otherwise waits for a flush that comes soon: the
// replica flushes whenever no message is waiting and after every
// receivedBatch finishes, and a received acknowledges every TID up to its
// own, so only the newest is kept. Failure goes out at once. Applied comes
// from finishing goroutines, possibly out of order, and acknowledges every
// TID up to its own (a sync that covers one transaction covers every
// earlier one), so only the highest is sent: the goroutines that a sync
// round wakes together leave their TIDs to the one already sending, which
// sends the highest when its send returns.
func (r *Replica) send(m wire.Message) {
	switch m := m.(type) {
	case *wire.Received:
		r.received = m.TID
		r.receivedN++
		if r.receivedN >= receivedBatch || r.group.Pending() == 0 {
			r.flush(r.ctx)
		}
	case *wire.Applied:
		r.mu.Lock()
		r.appliedMax = max(r.appliedMax, storage.TID(m.TID))
		if r.ackSending {
			r.mu.Unlock()
			return
		}
		r.ackSending = true
		for r.appliedMax > r.appliedSent {
			tid := r.appliedMax
			r.appliedSent = tid
			r.mu.Unlock()
			r.sendTo(r.ctx, &wire.Applied{TID: uint64(tid)})
			r.mu.Lock()
		}
		r.ackSending = false
		r.mu.Unlock()
	default:
		r.sendNow(r.ctx, m)
	}
}

// saveEpoch implements coreEnv.
func (r *Replica) saveEpoch(epoch uint64) error { return datadir.WriteEpoch(r.cfg.DataDir, epoch) }

// saveQuarantine implements coreEnv.
func (r *Replica) saveQuarantine(q Quarantine) error { return writeMarker(r.cfg.DataDir, q) }

// applied implements coreEnv.
func (r *Replica) applied(tid storage.TID) {
	r.mu.Lock()
	r.status.Counters.Applied++
	if tid > r.status.LastTID {
		r.status.LastTID = tid
		r.wakeLocked()
	}
	r.mu.Unlock()
}

// now implements coreEnv.
func (r *Replica) now() time.Time { return r.cfg.Now() }
