package memstore

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/repld/repld/storage"
)

// Config configures a Store. The zero Config is valid.
type Config struct {
	// Now is the clock Finish reads to choose a TID; nil means time.Now.
	// Tests inject a clock that stands still or goes backwards.
	Now func() time.Time
	// MaxObjectSize, if positive, is the largest object Vote accepts;
	// larger objects fail Vote with storage.ErrTooLarge. 0 means no limit.
	MaxObjectSize int
}

// Validate reports a setting that New would reject.
func (c Config) Validate() error {
	if c.MaxObjectSize < 0 {
		return fmt.Errorf("memstore: MaxObjectSize is %d; set it to 0 (no limit) or a positive number of bytes", c.MaxObjectSize)
	}
	return nil
}

// revision is one committed revision of an object. data is never modified
// after commit, so a txnRecord and the object's history share it.
type revision struct {
	tid  storage.TID
	data []byte
}

// txnRecord is a committed transaction. It is replaced, never modified, when
// Pack removes some of its records, so iterators may keep old ones.
type txnRecord struct {
	tid     storage.TID
	meta    storage.TxnMeta
	chain   storage.Checksum
	records []storage.Record // ascending OID
}

// Store is an in-memory storage.Storage. Create it with New.
type Store struct {
	now       func() time.Time
	maxObject int

	// lock is the commit lock: it holds a token from a successful Vote to
	// Finish, FinishAt or Abort. A channel, so waiting respects contexts.
	lock chan struct{}
	// done is closed by Close, waking every Vote waiting for the lock.
	done chan struct{}

	mu      sync.RWMutex
	closed  bool
	objects map[storage.OID][]revision // ascending TID
	txns    []*txnRecord               // ascending TID
	open    map[*txn]struct{}          // transactions Close must abort
	// nextOID is the lowest OID NewOID may return; oidsUsedUp is set once
	// the largest OID has been used, as nextOID cannot go past it.
	nextOID    storage.OID
	oidsUsedUp bool
}

var _ storage.Storage = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:       now,
		maxObject: cfg.MaxObjectSize,
		lock:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		objects:   make(map[storage.OID][]revision),
		open:      make(map[*txn]struct{}),
		// OID 0 is the root object of a ZODB database, which the
		// application stores by name; NewOID starts after it.
		nextOID: 1,
	}, nil
}

// readLock takes the read lock for op after checking ctx and Close. On
// success the caller must RUnlock.
func (s *Store) readLock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("memstore: %s: %w", op, storage.ErrClosed)
	}
	return nil
}

// writeLock is readLock for methods that modify the store.
func (s *Store) writeLock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %s: %w", op, err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("memstore: %s: %w", op, storage.ErrClosed)
	}
	return nil
}

// Load implements storage.Storage.
func (s *Store) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	if err := s.readLock(ctx, "load"); err != nil {
		return nil, 0, err
	}
	defer s.mu.RUnlock()
	revs := s.objects[oid]
	if len(revs) == 0 {
		return nil, 0, fmt.Errorf("memstore: load %s: %w", oid, storage.ErrNotFound)
	}
	r := revs[len(revs)-1]
	return clone(r.data), r.tid, nil
}

// LoadBefore implements storage.Storage.
func (s *Store) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	if err := s.readLock(ctx, "load before"); err != nil {
		return nil, 0, 0, err
	}
	defer s.mu.RUnlock()
	revs := s.objects[oid]
	i := sort.Search(len(revs), func(i int) bool { return revs[i].tid >= before })
	if i == 0 {
		return nil, 0, 0, fmt.Errorf("memstore: load %s before %s: %w", oid, before, storage.ErrNotFound)
	}
	var end storage.TID
	if i < len(revs) {
		end = revs[i].tid
	}
	r := revs[i-1]
	return clone(r.data), r.tid, end, nil
}

// History implements storage.Storage.
func (s *Store) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	if err := s.readLock(ctx, "history"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	revs := s.objects[oid]
	if len(revs) == 0 {
		return nil, fmt.Errorf("memstore: history %s: %w", oid, storage.ErrNotFound)
	}
	if n <= 0 || n > len(revs) {
		n = len(revs)
	}
	out := make([]storage.Revision, n)
	for i := range out {
		r := revs[len(revs)-1-i]
		out[i] = storage.Revision{TID: r.tid, Data: clone(r.data)}
	}
	return out, nil
}

// LastTransaction implements storage.Storage.
func (s *Store) LastTransaction(ctx context.Context) (storage.TID, error) {
	if err := s.readLock(ctx, "last transaction"); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	tid, _ := s.lastLocked()
	return tid, nil
}

// lastLocked returns the last TID and its chain (0 and the zero chain for
// an empty store).
func (s *Store) lastLocked() (storage.TID, storage.Checksum) {
	if len(s.txns) == 0 {
		return 0, storage.Checksum{}
	}
	last := s.txns[len(s.txns)-1]
	return last.tid, last.chain
}

// findLocked returns the index of the transaction tid, or -1.
func (s *Store) findLocked(tid storage.TID) int {
	i, ok := slices.BinarySearchFunc(s.txns, tid, func(r *txnRecord, tid storage.TID) int { return cmp.Compare(r.tid, tid) })
	if !ok {
		return -1
	}
	return i
}

// Chain implements storage.Storage.
func (s *Store) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	if err := s.readLock(ctx, "chain"); err != nil {
		return storage.Checksum{}, err
	}
	defer s.mu.RUnlock()
	if tid == 0 {
		return storage.Checksum{}, nil
	}
	i := s.findLocked(tid)
	if i < 0 {
		return storage.Checksum{}, fmt.Errorf("memstore: chain %s: %w", tid, storage.ErrNotFound)
	}
	return s.txns[i].chain, nil
}

// NewOID implements storage.Storage.
func (s *Store) NewOID(ctx context.Context) (storage.OID, error) {
	if err := s.writeLock(ctx, "new OID"); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if s.oidsUsedUp {
		return 0, fmt.Errorf("memstore: new OID: every OID up to %s is used", storage.OID(math.MaxUint64))
	}
	oid := s.nextOID
	s.useOIDLocked(oid)
	return oid, nil
}

// useOIDLocked makes sure NewOID never returns oid.
func (s *Store) useOIDLocked(oid storage.OID) {
	switch {
	case oid < s.nextOID:
	case oid == math.MaxUint64:
		s.oidsUsedUp = true
	default:
		s.nextOID = oid + 1
	}
}

// Iterator implements storage.Storage. The iterator walks a snapshot taken
// now; it needs no Close, but Close is harmless.
func (s *Store) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	if err := s.readLock(ctx, "iterator"); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if to == 0 {
		to = math.MaxUint64
	}
	lo := sort.Search(len(s.txns), func(i int) bool { return s.txns[i].tid >= from })
	hi := sort.Search(len(s.txns), func(i int) bool { return s.txns[i].tid > to })
	it := &iterator{s: s}
	if lo < hi {
		it.txns = slices.Clone(s.txns[lo:hi])
	}
	return it, nil
}

type iterator struct {
	s    *Store
	txns []*txnRecord // not yet returned; shared records are never modified
}

// Next implements storage.TransactionIterator.
func (it *iterator) Next(ctx context.Context) (*storage.Transaction, error) {
	if err := it.s.readLock(ctx, "iterator next"); err != nil {
		return nil, err
	}
	it.s.mu.RUnlock()
	if len(it.txns) == 0 {
		return nil, io.EOF
	}
	r := it.txns[0]
	it.txns = it.txns[1:]
	t := &storage.Transaction{
		TID: r.tid,
		Meta: storage.TxnMeta{
			User:        clone(r.meta.User),
			Description: clone(r.meta.Description),
			Extension:   clone(r.meta.Extension),
		},
		Chain:   r.chain,
		Records: make([]storage.Record, len(r.records)),
	}
	for i, rec := range r.records {
		t.Records[i] = storage.Record{OID: rec.OID, Data: clone(rec.Data)}
	}
	return t, nil
}

// Close implements storage.TransactionIterator.
func (it *iterator) Close() error {
	it.txns = nil
	return nil
}

// Pack implements storage.Storage.
func (s *Store) Pack(ctx context.Context, before storage.TID) error {
	if err := s.writeLock(ctx, "pack"); err != nil {
		return err
	}
	defer s.mu.Unlock()
	removed := make(map[storage.TID]map[storage.OID]bool)
	for oid, revs := range s.objects {
		// keep is the newest revision at or before before.
		keep := sort.Search(len(revs), func(i int) bool { return revs[i].tid > before }) - 1
		if keep <= 0 {
			continue
		}
		for _, r := range revs[:keep] {
			if removed[r.tid] == nil {
				removed[r.tid] = make(map[storage.OID]bool)
			}
			removed[r.tid][oid] = true
		}
		// A new slice, so the removed data can be garbage collected.
		s.objects[oid] = slices.Clone(revs[keep:])
	}
	for tid, oids := range removed {
		i := s.findLocked(tid)
		old := s.txns[i]
		packed := *old
		packed.records = slices.DeleteFunc(slices.Clone(old.records), func(r storage.Record) bool { return oids[r.OID] })
		s.txns[i] = &packed
	}
	return nil
}

// Begin implements storage.Storage.
func (s *Store) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	t := &txn{
		s: s,
		meta: storage.TxnMeta{
			User:        clone(meta.User),
			Description: clone(meta.Description),
			Extension:   clone(meta.Extension),
		},
		staged: make(map[storage.OID]staged),
	}
	if err := s.writeLock(ctx, "begin"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.open[t] = struct{}{}
	return t, nil
}

// Close implements storage.Storage: it aborts open transactions, wakes
// Votes waiting for the commit lock and discards all data. Closing again
// returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.done)
	for t := range s.open {
		t.endLocked()
	}
	s.objects, s.txns = nil, nil
	return nil
}

type txnState int

const (
	stateStoring txnState = iota
	stateVoted
	stateEnded // finished or aborted
)

func (st txnState) String() string {
	switch st {
	case stateStoring:
		return "in the store phase"
	case stateVoted:
		return "voted"
	default:
		return "finished or aborted"
	}
}

type staged struct {
	serial storage.TID
	data   []byte
}

// txn is a transaction of a Store. Its fields are guarded by s.mu, because
// Close ends transactions from another goroutine.
type txn struct {
	s         *Store
	meta      storage.TxnMeta
	state     txnState
	holdsLock bool
	staged    map[storage.OID]staged
}

// checkLocked reports why op may not run: the store is closed or the
// transaction is not in state want.
func (t *txn) checkLocked(op string, want txnState) error {
	if t.s.closed {
		return fmt.Errorf("memstore: %s: %w", op, storage.ErrClosed)
	}
	if t.state != want {
		return fmt.Errorf("memstore: %s: transaction is %s: %w", op, t.state, storage.ErrTxnState)
	}
	return nil
}

// endLocked ends the transaction, releasing the commit lock if it holds it.
func (t *txn) endLocked() {
	if t.holdsLock {
		<-t.s.lock
		t.holdsLock = false
	}
	t.state = stateEnded
	t.staged = nil
	delete(t.s.open, t)
}

// Store implements storage.Txn.
func (t *txn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: store %s: %w", oid, err)
	}
	data = clone(data) // outside the lock: objects may be large
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if err := t.checkLocked("store "+oid.String(), stateStoring); err != nil {
		return err
	}
	t.staged[oid] = staged{serial: serial, data: data}
	return nil
}

// Vote implements storage.Txn.
func (t *txn) Vote(ctx context.Context) error {
	s := t.s
	s.mu.Lock()
	err := t.checkLocked("vote", stateStoring)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		_ = t.Abort(ctx)
		return fmt.Errorf("memstore: vote: waiting for the commit lock: %w", ctx.Err())
	case <-s.done:
		return fmt.Errorf("memstore: vote: %w", storage.ErrClosed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t.holdsLock = true
	if err := t.checkLocked("vote", stateStoring); err != nil {
		t.endLocked()
		return err
	}
	if err := t.validateLocked(); err != nil {
		t.endLocked()
		return fmt.Errorf("memstore: vote: %w", err)
	}
	t.state = stateVoted
	return nil
}

// validateLocked checks sizes and conflicts, reporting the lowest OID at
// fault so that the error does not depend on map order.
func (t *txn) validateLocked() error {
	for _, oid := range t.sortedOIDs() {
		st := t.staged[oid]
		if t.s.maxObject > 0 && len(st.data) > t.s.maxObject {
			return fmt.Errorf("object %s is %d bytes, the limit (MaxObjectSize) is %d: %w", oid, len(st.data), t.s.maxObject, storage.ErrTooLarge)
		}
		var current storage.TID
		if revs := t.s.objects[oid]; len(revs) > 0 {
			current = revs[len(revs)-1].tid
		}
		if st.serial != current {
			return &storage.ConflictError{OID: oid, Expected: st.serial, Actual: current}
		}
	}
	return nil
}

func (t *txn) sortedOIDs() []storage.OID {
	oids := make([]storage.OID, 0, len(t.staged))
	for oid := range t.staged {
		oids = append(oids, oid)
	}
	slices.Sort(oids)
	return oids
}

// Finish implements storage.Txn. It ignores ctx: after a successful Vote
// the commit does not fail, and it never waits.
func (t *txn) Finish(context.Context) (storage.Commit, error) {
	return t.finish("finish", 0, false, storage.Checksum{})
}

// FinishAt implements storage.Txn.
func (t *txn) FinishAt(_ context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	return t.finish("finish at "+tid.String(), tid, true, expect)
}

func (t *txn) finish(op string, tid storage.TID, at bool, expect storage.Checksum) (storage.Commit, error) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := t.checkLocked(op, stateVoted); err != nil {
		return storage.Commit{}, err
	}
	last, prev := s.lastLocked()
	if !at {
		tid = storage.NextTID(s.now(), last)
		if tid <= last {
			return storage.Commit{}, fmt.Errorf("memstore: %s: no TID after %s: %w", op, last, storage.ErrTIDOrder)
		}
	} else if tid <= last {
		return storage.Commit{}, fmt.Errorf("memstore: %s: last transaction is %s: %w", op, last, storage.ErrTIDOrder)
	}
	oids := t.sortedOIDs()
	records := make([]storage.Record, len(oids))
	digests := make([]storage.RecordDigest, len(oids))
	for i, oid := range oids {
		data := t.staged[oid].data
		records[i] = storage.Record{OID: oid, Data: data}
		digests[i] = storage.DigestRecord(oid, data)
	}
	chain := storage.NextChain(prev, tid, t.meta, digests)
	if at && !expect.IsZero() && chain != expect {
		return storage.Commit{}, fmt.Errorf("memstore: %s: chain is %s, expected %s: %w", op, chain, expect, storage.ErrChainMismatch)
	}
	for _, r := range records {
		s.objects[r.OID] = append(s.objects[r.OID], revision{tid: tid, data: r.Data})
		s.useOIDLocked(r.OID)
	}
	s.txns = append(s.txns, &txnRecord{tid: tid, meta: t.meta, chain: chain, records: records})
	t.endLocked()
	return storage.Commit{TID: tid, Chain: chain}, nil
}

// Abort implements storage.Txn.
func (t *txn) Abort(context.Context) error {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.state != stateEnded {
		t.endLocked()
	}
	return nil
}

// clone copies b; a nil or empty b gives an empty, non-nil slice, so a
// 0-byte object reads back as present.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}
