package primary

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/repld/repld/internal/datadir"

	"go.uber.org/zap"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// ErrNotReplicated is returned, wrapped, by Finish and FinishAt when the
// transaction committed locally (it is durable and its Commit is returned
// too) but the sync policy was not met in time: fewer than K replicas
// acknowledged it before the timeout, the caller's context ended, or the
// Primary closed. The transaction is not rolled back; replicas that are
// behind get it later.
var ErrNotReplicated = errors.New("primary: committed locally but not replicated as the sync policy asks")

// shortWarnEvery rate-limits the warning about too few healthy replicas.
const shortWarnEvery = 10 * time.Second

// Primary is a storage.Storage that replicates every transaction of its
// local store to the replicas of its gcs group. See the package doc.
type Primary struct {
	cfg    Config
	inner  storage.Storage
	log    *zap.Logger
	epoch  uint64
	group  *gcs.Group
	sender *msgstream.Sender
	recv   *msgstream.Receiver

	// ctx lives until Close. Sends use it, never a caller's context, so a
	// caller giving up cannot cut a message or a transaction's messages
	// short on the stream.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	saveMu    sync.Mutex // serialises registry writes

	ts *turnstile
	// beginMu is held shared while a Begin takes its seq, and exclusively
	// while a replica goes live, so every message of a seq at or above the
	// live message's next_seq follows it on the stream.
	beginMu sync.RWMutex

	// lastChosen is the last TID given to the local store's FinishAt. It is
	// written only under the store's commit lock.
	lastChosen atomic.Uint64
	// lastSent is the TID of the last finish broadcast (written in turn).
	lastSent atomic.Uint64
	// finishing counts the commits written locally that have not
	// returned: those waiting for their local sync or their replicas.
	finishing atomic.Int64

	commits, quarantines, notReplicated, sendErrors, protocolErrors, replayed atomic.Uint64

	mu       sync.Mutex // guards the fields below
	seq      uint64     // last seq assigned by Begin
	inflight map[uint64]*flight
	replicas map[string]*replica
	members  map[gcs.MemberID]*replica
	// waiters are the commits waiting for their sync policy; an
	// acknowledgement wakes only those it may satisfy.
	waiters  map[*syncWaiter]struct{}
	index    commitIndex
	dirty    bool // the registry changed since it was saved
	warnedAt time.Time
}

// flight is a transaction begun and not yet finished or aborted on the
// stream.
type flight struct {
	// missed lists replicas that went live after its begin: they get it
	// whole as a replay right after its finish.
	missed []gcs.MemberID
}

// replica is one registry entry.
type replica struct {
	name                      string
	state                     State
	member                    gcs.MemberID // current session, "" if none
	lastReceived, lastApplied storage.TID
	quarantine                *Quarantine
	catchUp                   *catchUp // the running catch-up, if any
}

// catchUp is a replica's catch-up goroutine.
type catchUp struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Open opens a Primary: it reads the epoch and the registry from
// cfg.DataDir, creates the gcs group on cfg.Node and starts serving
// replicas. If Open fails, cfg.Store is left open for the caller.
func Open(ctx context.Context, cfg Config) (*Primary, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("primary: data directory: %w", err)
	}
	epoch, err := datadir.ReadEpoch(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if want := max(epoch, cfg.Epoch, 1); want != epoch {
		if err := datadir.WriteEpoch(cfg.DataDir, want); err != nil {
			return nil, err
		}
		epoch = want
	}
	saved, err := loadRegistry(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	last, err := cfg.Store.LastTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("primary: last transaction of the local store: %w", err)
	}
	mcfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: cfg.Fragment}}
	recv, err := msgstream.NewReceiver(mcfg)
	if err != nil {
		return nil, fmt.Errorf("primary: %w", err)
	}
	group, err := cfg.Node.Create(ctx, cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("primary: create group %q: %w", cfg.Group, err)
	}
	sender, err := msgstream.NewSender(group, mcfg)
	if err != nil {
		_ = group.Close()
		return nil, fmt.Errorf("primary: %w", err)
	}
	p := &Primary{
		cfg: cfg, inner: cfg.Store, log: cfg.Logger.Named("primary"), epoch: epoch,
		group: group, sender: sender, recv: recv, ts: newTurnstile(),
		inflight: make(map[uint64]*flight), replicas: make(map[string]*replica),
		members: make(map[gcs.MemberID]*replica), waiters: make(map[*syncWaiter]struct{}),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.lastChosen.Store(uint64(last))
	p.lastSent.Store(uint64(last))
	for _, s := range saved {
		r := &replica{name: s.Name, lastReceived: s.LastReceivedTID, lastApplied: s.LastAppliedTID}
		if s.Quarantine != nil {
			q := *s.Quarantine
			r.state, r.quarantine = StateQuarantined, &q
		}
		p.replicas[s.Name] = r
	}
	p.log.Info("primary open", zap.String("name", cfg.Name), zap.Uint64("epoch", epoch),
		zap.Stringer("last_tid", last), zap.String("group", cfg.Group), zap.Int("replicas_known", len(saved)))
	p.wg.Go(p.receiveLoop)
	p.wg.Go(p.heartbeatLoop)
	return p, nil
}

// Epoch returns the primary's epoch, carried by every message it sends.
func (p *Primary) Epoch() uint64 { return p.epoch }

// Close stops serving replicas, ends the group, saves the registry and
// closes the local store. Transactions still open are aborted by the
// store. Later calls return the first call's result.
func (p *Primary) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		gerr := p.group.Close()
		if errors.Is(gerr, gcs.ErrClosed) {
			gerr = nil
		}
		p.wg.Wait()
		p.mu.Lock()
		for _, r := range p.replicas {
			if r.state != StateQuarantined {
				r.state = StateDisconnected
			}
		}
		p.mu.Unlock()
		serr := p.saveRegistry()
		p.closeErr = errors.Join(gerr, serr, p.inner.Close())
	})
	return p.closeErr
}

// send sends m to member to ("" for every member) under the Primary's
// lifetime. Failures are counted and logged, not returned to callers of
// storage methods: the local operation has succeeded, and a replica that
// misses a message learns of it from gcs and catches up.
func (p *Primary) send(to gcs.MemberID, m wire.Message) error {
	err := p.sender.Send(p.ctx, to, m)
	if err != nil {
		p.sendErrors.Add(1)
		if p.ctx.Err() == nil {
			p.log.Warn("send failed", zap.String("method", m.Method()), zap.String("to", string(to)), zap.Error(err))
		}
	}
	return err
}

// notifyLocked wakes every commit waiting for its sync policy: a replica's
// state changed, which may change how many are healthy. p.mu is held.
func (p *Primary) notifyLocked() {
	for w := range p.waiters {
		w.signal()
	}
}

// syncWaiter is a commit waiting for its sync policy.
type syncWaiter struct {
	tid  storage.TID
	pol  SyncPolicy
	wake chan struct{} // buffered: a signal is never lost nor blocks
}

func (w *syncWaiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// ackedLocked wakes the commits that an acknowledgement of tid (applied or
// only received) may have satisfied, and no other: with many commits in
// flight, waking them all for every acknowledgement costs more than the
// acknowledgements themselves. p.mu is held.
func (p *Primary) ackedLocked(tid storage.TID, applied bool) {
	for w := range p.waiters {
		if w.tid > tid || (!applied && w.pol.Mode != Received) {
			continue
		}
		if _, acked := p.countLocked(w.tid, w.pol.Mode); acked >= w.pol.Replicas {
			w.signal()
		}
	}
}

// countLocked returns how many replicas are healthy and how many of those
// acknowledged tid as mode asks. p.mu is held.
func (p *Primary) countLocked(tid storage.TID, mode Mode) (healthy, acked int) {
	for _, r := range p.replicas {
		if r.state != StateHealthy {
			continue
		}
		healthy++
		if r.lastApplied >= tid || (mode == Received && r.lastReceived >= tid) {
			acked++
		}
	}
	return healthy, acked
}

// Status returns a snapshot for /status and metrics.
func (p *Primary) Status() Status {
	snd, rcv := p.sender.Counters(), p.recv.Counters()
	st := Status{
		Name: p.cfg.Name, Role: "primary", Epoch: p.epoch, LastTID: storage.TID(p.lastSent.Load()),
		Counters: Counters{
			Commits: p.commits.Load(), BytesReplicated: snd.Bytes, MessagesSent: snd.Messages,
			FragmentsSent: snd.Fragments, Quarantines: p.quarantines.Load(),
			FragmentErrors: rcv.FragmentErrors, ProtocolErrors: rcv.ProtocolErrors + p.protocolErrors.Load(),
			Replayed: p.replayed.Load(), NotReplicated: p.notReplicated.Load(), SendErrors: p.sendErrors.Load(),
		},
	}
	p.mu.Lock()
	st.Replicas = p.registryLocked()
	healthy := p.healthyLocked()
	p.mu.Unlock()
	pol := p.cfg.Sync
	st.Sync = SyncStatus{
		Mode: pol.Mode.String(), K: pol.Replicas, WhenShort: pol.WhenShort.String(),
		Degraded: pol.Mode != Async && healthy < pol.Replicas, Healthy: healthy,
	}
	return st
}

// registryLocked returns every replica's status, sorted by name. p.mu is
// held.
func (p *Primary) registryLocked() []ReplicaStatus {
	last := storage.TID(p.lastSent.Load())
	out := make([]ReplicaStatus, 0, len(p.replicas))
	for _, r := range p.replicas {
		s := ReplicaStatus{
			Name: r.name, State: r.state.String(),
			LastReceivedTID: r.lastReceived, LastAppliedTID: r.lastApplied,
		}
		if r.quarantine != nil {
			q := *r.quarantine
			s.Quarantine = &q
		}
		lagOf(&s, &p.index, last)
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b ReplicaStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// healthyLocked counts healthy replicas. p.mu is held.
func (p *Primary) healthyLocked() int {
	n := 0
	for _, r := range p.replicas {
		if r.state == StateHealthy {
			n++
		}
	}
	return n
}

// saveRegistry persists the registry.
func (p *Primary) saveRegistry() error {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	rs := p.registryLocked()
	p.dirty = false
	p.mu.Unlock()
	if err := saveRegistry(p.cfg.DataDir, rs); err != nil {
		p.log.Error("registry not saved", zap.Error(err))
		return err
	}
	return nil
}

// heartbeatLoop tells replicas the last TID every HeartbeatInterval, and
// saves the registry when it changed.
func (p *Primary) heartbeatLoop() {
	t := time.NewTicker(p.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		_ = p.send("", &wire.Heartbeat{Epoch: p.epoch, LastTID: p.lastSent.Load()})
		p.mu.Lock()
		dirty := p.dirty
		healthy := p.healthyLocked()
		p.mu.Unlock()
		if pol := p.cfg.Sync; pol.Mode != Async && healthy < pol.Replicas {
			p.warnShort(healthy, pol)
		}
		if dirty {
			_ = p.saveRegistry()
		}
	}
}

// warnShort logs, at most every shortWarnEvery, that fewer than K replicas
// are healthy.
func (p *Primary) warnShort(healthy int, pol SyncPolicy) {
	now := time.Now()
	p.mu.Lock()
	if now.Sub(p.warnedAt) < shortWarnEvery {
		p.mu.Unlock()
		return
	}
	p.warnedAt = now
	p.mu.Unlock()
	p.log.Warn("fewer healthy replicas than the sync policy asks: replication is degraded",
		zap.Int("healthy", healthy), zap.Int("k", pol.Replicas), zap.Stringer("mode", pol.Mode),
		zap.Stringer("when_short", pol.WhenShort))
}

// policy returns the sync policy of a commit made with ctx.
func (p *Primary) policy(ctx context.Context) SyncPolicy {
	if v, ok := ctx.Value(syncKey{}).(SyncPolicy); ok {
		return v.withDefaults()
	}
	return p.cfg.Sync
}

// waitSync waits until the sync policy holds for tid.
func (p *Primary) waitSync(ctx context.Context, tid storage.TID) error {
	pol := p.policy(ctx)
	if pol.Mode == Async {
		return nil
	}
	timer := time.NewTimer(pol.Timeout)
	defer timer.Stop()
	// Registered before the first count, so no change after it is missed.
	w := &syncWaiter{tid: tid, pol: pol, wake: make(chan struct{}, 1)}
	p.mu.Lock()
	p.waiters[w] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiters, w)
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		healthy, acked := p.countLocked(tid, pol.Mode)
		p.mu.Unlock()
		if acked >= pol.Replicas {
			return nil
		}
		if healthy < pol.Replicas {
			p.warnShort(healthy, pol)
			if pol.WhenShort == Degrade {
				return nil
			}
		}
		var why error
		select {
		case <-w.wake:
			continue
		case <-timer.C:
			why = fmt.Errorf("timed out after %v", pol.Timeout)
		case <-ctx.Done():
			why = ctx.Err()
		case <-p.ctx.Done():
			why = storage.ErrClosed
		}
		p.notReplicated.Add(1)
		return fmt.Errorf("%w: tid %s: %d of %d replicas acknowledged %s (%d healthy): %w",
			ErrNotReplicated, tid, acked, pol.Replicas, pol.Mode, healthy, why)
	}
}
