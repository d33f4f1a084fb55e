package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// Store is a storage.Storage on a badger database in managed mode. It is
// safe for concurrent use.
type Store struct {
	cfg Config
	log *zap.Logger
	db  *badger.DB

	// maxCount and maxSize are the limits of one badger transaction.
	maxCount, maxSize int64

	// commitLock is held from Vote to Finish or Abort.
	commitLock chan struct{}
	// closing is closed when Close starts, waking Votes that wait.
	closing chan struct{}
	// opMu is held shared by every operation and exclusively by Close, so
	// Close waits for operations in flight and the database outlives them.
	opMu      sync.RWMutex
	closed    atomic.Bool // set under opMu held exclusively
	closeOnce sync.Once

	// lastChain is the chain of lastWritten; both change under the commit
	// lock. lastWritten is the newest transaction written to badger,
	// published the newest one that readers see: durable, or written when
	// NoSync is set.
	lastChain   storage.Checksum
	lastWritten atomic.Uint64
	published   atomic.Uint64

	// failed is set when a write or sync error leaves the store's state
	// unknown; every later operation reports it.
	failed atomic.Pointer[error]

	syncer *groupSync
	logs   *logFiles
	// vlogDirty is set after a write that may have put data in the value
	// log, so that the next sync round includes the value log. vlogAlways
	// is set when ValueThreshold is so low that any write may: badger's
	// own commit marker or an 8-byte counter may then go there.
	vlogDirty  atomic.Bool
	vlogAlways bool
	// syncRounds and syncTime count the sync rounds that succeeded and the
	// time they took, for SyncStats; atomics, as they are updated on the
	// commit path.
	syncRounds atomic.Uint64
	syncTime   atomic.Int64 // nanoseconds

	// blobDir holds the blob files. blobGate is held shared by a reader
	// around opening a blob file (and deciding whether a missing one was
	// packed), and taken exclusively by Pack between publishing a horizon
	// and removing the files it packed.
	blobDir  string
	blobGate sync.RWMutex
	// directBufs recycles the aligned buffers of direct blob writes;
	// directRefused is set once a direct write was refused, and blob
	// files are then written through the page cache.
	directBufs    sync.Pool
	directRefused atomic.Bool

	packMu  sync.Mutex // serialises Pack
	horizon atomic.Uint64
	packVer uint64 // badger version of the newest pack horizon record

	oidMu       sync.Mutex
	nextOID     uint64 // lowest OID NewOID may return
	oidsUsedUp  bool   // nextOID cannot go past the largest OID
	reservedOID uint64 // OIDs below it are reserved durably
	oidVer      uint64 // badger version of the newest OID counter record
}

var _ storage.Storage = (*Store)(nil)

// maxInternalValue bounds the values the store writes without marking the
// value log dirty (counters, the pack horizon, intent records) and
// badger's commit marker (a decimal version).
const maxInternalValue = 64

// Open opens (creating if needed) the store in cfg.Dir. It finishes any
// transaction a crash interrupted after its commit point and discards any
// staged data and blob files of transactions that did not reach it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", cfg.Dir, err)
	}
	cfg = cfg.withDefaults()
	db, err := badger.OpenManaged(cfg.badgerOptions())
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w", cfg.Dir, err)
	}
	s := &Store{
		cfg:        cfg,
		log:        cfg.Logger.Named("badgerstore"),
		db:         db,
		maxCount:   db.MaxBatchCount(),
		maxSize:    db.MaxBatchSize(),
		commitLock: make(chan struct{}, 1),
		closing:    make(chan struct{}),
		blobDir:    filepath.Join(cfg.Dir, blobDirName),
		vlogAlways: cfg.ValueThreshold <= maxInternalValue,
	}
	s.syncer = &groupSync{fn: s.syncRound}
	if err := s.load(ctx); err != nil {
		err = errors.Join(fmt.Errorf("badgerstore: open %s: %w", cfg.Dir, err), db.Close())
		if s.logs != nil {
			err = errors.Join(err, s.logs.close())
		}
		return nil, err
	}
	return s, nil
}

// load recovers the in-memory state from the database.
func (s *Store) load(ctx context.Context) error {
	logs, err := newLogFiles(s.cfg.Dir)
	if err != nil {
		return err
	}
	s.logs = logs
	if err := s.recover(ctx); err != nil {
		return err
	}
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()

	h, ver, err := readCounter(rtxn, keyPackHorizon, "pack horizon")
	if err != nil {
		return err
	}
	s.horizon.Store(h)
	s.packVer = ver
	s.db.SetDiscardTs(h)

	reserved, ver, err := readCounter(rtxn, keyOIDCounter, "OID counter")
	if err != nil {
		return err
	}
	s.reservedOID, s.oidVer = reserved, ver
	s.nextOID = max(reserved, 1)
	if k, ok, err := lastKey(rtxn, prefixObject); err != nil {
		return err
	} else if ok {
		oid, err := decodeKey9(k, prefixObject)
		if err != nil {
			return err
		}
		s.bumpOID(storage.OID(oid))
	}

	if k, ok, err := lastKey(rtxn, prefixTxn); err != nil {
		return err
	} else if ok {
		tid, err := decodeKey9(k, prefixTxn)
		if err != nil {
			return err
		}
		rec, err := getTxnRecord(rtxn, storage.TID(tid))
		if err != nil {
			return err
		}
		s.lastChain = rec.Chain
		s.lastWritten.Store(tid)
		s.published.Store(tid)
	}
	return s.openBlobs()
}

// readCounter reads a singleton counter key and its badger version.
func readCounter(rtxn *badger.Txn, k byte, what string) (value, version uint64, err error) {
	item, err := rtxn.Get([]byte{k})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", what, err)
	}
	b, err := itemValue(item, what)
	if err != nil {
		return 0, 0, err
	}
	v, err := decodeUint64(b, what)
	return v, item.Version(), err
}

// lastKey returns the greatest key with the one-byte prefix.
func lastKey(rtxn *badger.Txn, prefix byte) ([]byte, bool, error) {
	opts := badger.IteratorOptions{Reverse: true, Prefix: []byte{prefix}}
	it := rtxn.NewIterator(opts)
	defer it.Close()
	seek := make([]byte, 10)
	seek[0] = prefix
	for i := 1; i < len(seek); i++ {
		seek[i] = 0xff
	}
	it.Seek(seek)
	if !it.Valid() {
		return nil, false, nil
	}
	return it.Item().KeyCopy(nil), true, nil
}

// itemValue copies an item's value after checking its format byte.
func itemValue(item *badger.Item, what string) ([]byte, error) {
	if m := item.UserMeta(); m != formatV1 {
		return nil, fmt.Errorf("%w: %s under key %x version %d has format %d, want %d", ErrCorrupt, what, item.Key(), item.Version(), m, formatV1)
	}
	b, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("read %s under key %x version %d: %w", what, item.Key(), item.Version(), err)
	}
	return b, nil
}

func getTxnRecord(rtxn *badger.Txn, tid storage.TID) (txnRecord, error) {
	item, err := rtxn.Get(txnKey(tid))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return txnRecord{}, fmt.Errorf("transaction %s: %w", tid, storage.ErrNotFound)
	}
	if err != nil {
		return txnRecord{}, fmt.Errorf("read transaction %s: %w", tid, err)
	}
	b, err := itemValue(item, "transaction record")
	if err != nil {
		return txnRecord{}, err
	}
	rec, err := decodeTxnRecord(b)
	if err != nil {
		return txnRecord{}, fmt.Errorf("transaction %s: %w", tid, err)
	}
	return rec, nil
}

// enter starts an operation: it checks ctx, Close and failure and takes
// opMu shared; on success the caller must call s.opMu.RUnlock.
func (s *Store) enter(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("badgerstore: %s: %w", op, err)
	}
	return s.enterOp(op)
}

// enterOp is enter for an operation that no context stops.
func (s *Store) enterOp(op string) error {
	s.opMu.RLock()
	if s.closed.Load() {
		s.opMu.RUnlock()
		return fmt.Errorf("badgerstore: %s: %w", op, storage.ErrClosed)
	}
	if p := s.failed.Load(); p != nil {
		s.opMu.RUnlock()
		return fmt.Errorf("badgerstore: %s: store failed earlier: %w", op, *p)
	}
	return nil
}

// fail records an error after which the store's state is unknown.
func (s *Store) fail(err error) {
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("store failed; reopen it to recover", zap.Error(err))
	}
}

// publish makes transactions up to tid visible to readers.
func (s *Store) publish(tid uint64) {
	for {
		cur := s.published.Load()
		if tid <= cur || s.published.CompareAndSwap(cur, tid) {
			return
		}
	}
}

// syncRound is one group sync: everything written before it starts is on
// stable storage when it returns, and is then published.
func (s *Store) syncRound() error {
	start := time.Now()
	target := s.lastWritten.Load()
	vlog := s.vlogDirty.Swap(false) || s.vlogAlways
	if err := s.logs.sync(vlog); err != nil {
		err = fmt.Errorf("sync: %w", err)
		s.fail(err)
		return err
	}
	// The time first: a reader that loads the count, then the time, never
	// sees rounds without their time.
	s.syncTime.Add(int64(time.Since(start)))
	s.syncRounds.Add(1)
	s.publish(target)
	return nil
}

// SyncStats counts the sync rounds of a Store: the fsyncs of badger's log
// files that make commits durable, each shared by the commits written
// before it started.
type SyncStats struct {
	// Rounds is the number of sync rounds that succeeded since Open.
	Rounds uint64
	// Time is their total duration. Rounds run one at a time, so Time
	// close to the elapsed time means that commits waited for the disk.
	Time time.Duration
}

// SyncStats returns the store's sync rounds since Open (with NoSync,
// commits run none). It takes no lock, so it may be called at any time,
// also after Close.
func (s *Store) SyncStats() SyncStats {
	rounds := s.syncRounds.Load()
	return SyncStats{Rounds: rounds, Time: time.Duration(s.syncTime.Load())}
}

// durable waits until everything written so far is durable (a no-op with
// NoSync).
func (s *Store) durable() error {
	if s.cfg.NoSync {
		return nil
	}
	return s.syncer.wait(false)
}

// committed is durable for a commit that released the commit lock: its
// sync round may wait for the commits queued behind it.
func (s *Store) committed() error {
	if s.cfg.NoSync {
		return nil
	}
	return s.syncer.wait(true)
}

// committedAt is committed for the commit of tid: a round that covered it
// may have run already (another commit's wait started it), and then there
// is nothing to wait for; waiting would start a round of its own.
func (s *Store) committedAt(tid storage.TID) error {
	if storage.TID(s.published.Load()) >= tid {
		return nil
	}
	return s.committed()
}

// readTxn is a read-only badger transaction at the published snapshot.
func (s *Store) readTxn() (*badger.Txn, storage.TID) {
	ts := s.published.Load()
	return s.db.NewTransactionAt(ts, false), storage.TID(ts)
}

// Load implements storage.Storage.
func (s *Store) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	if err := s.enter(ctx, "load"); err != nil {
		return nil, 0, err
	}
	defer s.opMu.RUnlock()
	for {
		data, serial, err := s.loadCurrent(oid)
		if errors.Is(err, errBlobPacked) {
			continue // a newer revision was published and packed this one
		}
		if err != nil {
			return nil, 0, fmt.Errorf("badgerstore: load %s: %w", oid, err)
		}
		return data, serial, nil
	}
}

func (s *Store) loadCurrent(oid storage.OID) ([]byte, storage.TID, error) {
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	item, err := rtxn.Get(objectKey(oid))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, 0, storage.ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	data, err := s.objectValue(item, oid)
	return data, storage.TID(item.Version()), err
}

// versions calls fn for each revision of oid visible in rtxn, newest first,
// until fn returns false. Revisions that Pack removed are skipped: all
// those older than the newest one at or before the horizon.
func (s *Store) versions(rtxn *badger.Txn, oid storage.OID, fn func(item *badger.Item, newer storage.TID) (bool, error)) error {
	k := objectKey(oid)
	it := rtxn.NewKeyIterator(k, badger.IteratorOptions{AllVersions: true})
	defer it.Close()
	horizon := storage.TID(s.horizon.Load())
	var newer storage.TID
	for it.Seek(k); it.Valid(); it.Next() {
		item := it.Item()
		if item.IsDeletedOrExpired() {
			return fmt.Errorf("%w: object %s has a deletion marker at version %d", ErrCorrupt, oid, item.Version())
		}
		if newer != 0 && newer <= horizon {
			return nil // packed away
		}
		more, err := fn(item, newer)
		if err != nil || !more {
			return err
		}
		newer = storage.TID(item.Version())
	}
	return nil
}

// LoadBefore implements storage.Storage.
func (s *Store) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	if err := s.enter(ctx, "load before"); err != nil {
		return nil, 0, 0, err
	}
	defer s.opMu.RUnlock()
	var (
		data       []byte
		start, end storage.TID
		err        error
	)
	for {
		data, start, end, err = s.loadBefore(oid, before)
		if !errors.Is(err, errBlobPacked) {
			break
		}
	}
	if err != nil {
		return nil, 0, 0, fmt.Errorf("badgerstore: load %s before %s: %w", oid, before, err)
	}
	if start == 0 {
		return nil, 0, 0, fmt.Errorf("badgerstore: load %s before %s: %w", oid, before, storage.ErrNotFound)
	}
	return data, start, end, nil
}

func (s *Store) loadBefore(oid storage.OID, before storage.TID) (data []byte, start, end storage.TID, err error) {
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	err = s.versions(rtxn, oid, func(item *badger.Item, newer storage.TID) (bool, error) {
		if storage.TID(item.Version()) >= before {
			return true, nil
		}
		b, err := s.objectValue(item, oid)
		data, start, end = b, storage.TID(item.Version()), newer
		return false, err
	})
	return data, start, end, err
}

// History implements storage.Storage.
func (s *Store) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	if err := s.enter(ctx, "history"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	var (
		revs []storage.Revision
		err  error
	)
	for {
		revs, err = s.history(oid, n)
		if !errors.Is(err, errBlobPacked) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("badgerstore: history of %s: %w", oid, err)
	}
	if len(revs) == 0 {
		return nil, fmt.Errorf("badgerstore: history of %s: %w", oid, storage.ErrNotFound)
	}
	return revs, nil
}

func (s *Store) history(oid storage.OID, n int) ([]storage.Revision, error) {
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	var revs []storage.Revision
	err := s.versions(rtxn, oid, func(item *badger.Item, _ storage.TID) (bool, error) {
		b, err := s.objectValue(item, oid)
		revs = append(revs, storage.Revision{TID: storage.TID(item.Version()), Data: b})
		return n <= 0 || len(revs) < n, err
	})
	return revs, err
}

// LastTransaction implements storage.Storage.
func (s *Store) LastTransaction(ctx context.Context) (storage.TID, error) {
	if err := s.enter(ctx, "last transaction"); err != nil {
		return 0, err
	}
	defer s.opMu.RUnlock()
	return storage.TID(s.published.Load()), nil
}

// Chain implements storage.Storage.
func (s *Store) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	if err := s.enter(ctx, "chain"); err != nil {
		return storage.Checksum{}, err
	}
	defer s.opMu.RUnlock()
	if tid == 0 {
		return storage.Checksum{}, nil
	}
	rtxn, _ := s.readTxn()
	defer rtxn.Discard()
	rec, err := getTxnRecord(rtxn, tid)
	if err != nil {
		return storage.Checksum{}, fmt.Errorf("badgerstore: chain at %s: %w", tid, err)
	}
	return rec.Chain, nil
}

// NewOID implements storage.Storage. OIDs are reserved in blocks of
// Config.OIDBlock with one durable write, so a crash skips at most the
// rest of a block.
func (s *Store) NewOID(ctx context.Context) (storage.OID, error) {
	if err := s.enter(ctx, "new OID"); err != nil {
		return 0, err
	}
	defer s.opMu.RUnlock()
	s.oidMu.Lock()
	defer s.oidMu.Unlock()
	if s.oidsUsedUp {
		return 0, fmt.Errorf("badgerstore: new OID: every OID up to %s is used", storage.OID(math.MaxUint64))
	}
	oid := s.nextOID
	if oid >= s.reservedOID {
		reserve := oid + min(s.cfg.OIDBlock, math.MaxUint64-oid)
		w := s.db.NewTransactionAt(math.MaxUint64, true)
		defer w.Discard()
		if err := w.SetEntry(badger.NewEntry([]byte{keyOIDCounter}, encodeUint64(reserve)).WithMeta(formatV1)); err != nil {
			return 0, fmt.Errorf("badgerstore: new OID: reserve: %w", err)
		}
		if err := w.CommitAt(s.oidVer+1, nil); err != nil {
			return 0, fmt.Errorf("badgerstore: new OID: reserve: %w", err)
		}
		s.oidVer++
		if err := s.durable(); err != nil {
			return 0, fmt.Errorf("badgerstore: new OID: %w", err)
		}
		s.reservedOID = reserve
	}
	s.bumpOID(storage.OID(oid))
	return storage.OID(oid), nil
}

// bumpOID makes NewOID return only OIDs above oid. Caller holds oidMu or
// runs before the store is shared.
func (s *Store) bumpOID(oid storage.OID) {
	switch {
	case uint64(oid) == math.MaxUint64:
		s.oidsUsedUp = true
	case uint64(oid) >= s.nextOID:
		s.nextOID = uint64(oid) + 1
	}
}

// Pack implements storage.Storage. It records the horizon durably and
// hands it to badger as the discard timestamp, so compaction drops the
// packed revisions; reads filter them until it does.
func (s *Store) Pack(ctx context.Context, before storage.TID) error {
	if err := s.enter(ctx, "pack"); err != nil {
		return err
	}
	defer s.opMu.RUnlock()
	s.packMu.Lock()
	defer s.packMu.Unlock()
	// Revisions committed later are not packed: the newest revision at or
	// before before is the newest one at or before the last transaction.
	h := min(uint64(before), s.published.Load())
	if h <= s.horizon.Load() {
		return nil
	}
	w := s.db.NewTransactionAt(math.MaxUint64, true)
	defer w.Discard()
	if err := w.SetEntry(badger.NewEntry([]byte{keyPackHorizon}, encodeUint64(h)).WithMeta(formatV1)); err != nil {
		return fmt.Errorf("badgerstore: pack before %s: %w", before, err)
	}
	if err := w.CommitAt(s.packVer+1, nil); err != nil {
		return fmt.Errorf("badgerstore: pack before %s: %w", before, err)
	}
	s.packVer++
	if err := s.durable(); err != nil {
		return fmt.Errorf("badgerstore: pack before %s: %w", before, err)
	}
	s.horizon.Store(h)
	s.db.SetDiscardTs(h)
	if err := s.dropPackedBlobs(h); err != nil {
		// The horizon holds; Open (or the next Pack) removes the files.
		return fmt.Errorf("badgerstore: pack before %s: blob files: %w", before, err)
	}
	return nil
}

// Begin implements storage.Storage.
func (s *Store) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	if err := s.enter(ctx, "begin"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	s.syncer.opened()
	return &txn{s: s, meta: meta, recs: make(map[storage.OID]*record)}, nil
}

// Close implements storage.Storage. It waits for operations in flight;
// open transactions are aborted (their staged data is discarded at the
// next Open).
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.opMu.Lock()
	defer s.opMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	err := s.db.Close()
	// After the database: badger's own close may still write the logs.
	if cerr := s.logs.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	return nil
}
