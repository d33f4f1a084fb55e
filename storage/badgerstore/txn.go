package badgerstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

type txnState int

const (
	stateStoring txnState = iota
	stateVoted
	stateDone
)

// record is one staged object revision.
type record struct {
	serial storage.TID
	// data is the revision's data, or nil when blob is set: the data is
	// then in that blob file.
	data   []byte
	blob   *blobRef
	size   int64
	digest storage.RecordDigest
	// synced reports the end of the blob file's sync (see newRecord);
	// waitSynced keeps its result in syncErr.
	synced  <-chan error
	syncErr error
}

// value is what the record's o key holds, and its UserMeta.
func (r *record) value() ([]byte, byte) {
	if r.blob != nil {
		return encodeBlobRef(*r.blob), formatBlob
	}
	return r.data, formatV1
}

// txn implements storage.Txn.
type txn struct {
	s     *Store
	meta  storage.TxnMeta
	recs  map[storage.OID]*record
	state txnState

	// Set by Vote (see sortOIDs).
	oids []storage.OID // ascending
	keys []byte        // the object keys of oids, 9 bytes each
	// staged: the transaction goes through the staging area (see doc.go);
	// nonce names its staging keys, written at version stageVer.
	staged   bool
	nonce    uint64
	stageVer uint64
	// blobsSynced: every blob file of the transaction is durable.
	blobsSynced bool
}

// Store implements storage.Txn.
func (t *txn) Store(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("badgerstore: store %s: %w", oid, err)
	}
	if t.state != stateStoring {
		return fmt.Errorf("badgerstore: store %s: %w", oid, storage.ErrTxnState)
	}
	if t.s.closed.Load() {
		return fmt.Errorf("badgerstore: store %s: %w", oid, storage.ErrClosed)
	}
	// The digest is computed and a blob file written here, outside the
	// commit lock.
	r, err := t.s.storeRecord(ctx, oid, serial, data)
	if err != nil {
		return fmt.Errorf("badgerstore: store %s: %w", oid, err)
	}
	if r.blob != nil {
		t.blobsSynced = false
	}
	if old := t.recs[oid]; old != nil && old.blob != nil {
		old.waitSynced()
		t.s.removeBlobs([]uint64{old.blob.id})
	}
	t.recs[oid] = r
	return nil
}

// isBlob reports whether an object of n bytes goes to a blob file; one
// above MaxObjectSize does not, as Vote refuses it.
func (s *Store) isBlob(n int64) bool {
	return n >= s.cfg.BlobThreshold && n <= s.cfg.MaxObjectSize
}

// storeRecord is newRecord, holding the store open while it writes a
// blob file.
func (s *Store) storeRecord(ctx context.Context, oid storage.OID, serial storage.TID, data []byte) (*record, error) {
	if !s.isBlob(int64(len(data))) {
		return s.newRecord(oid, serial, data)
	}
	if err := s.enter(ctx, "store"); err != nil {
		return nil, err
	}
	defer s.opMu.RUnlock()
	return s.newRecord(oid, serial, data)
}

// records returns the transaction's records.
func (t *txn) records() []*record {
	recs := make([]*record, 0, len(t.recs))
	for _, r := range t.recs {
		recs = append(recs, r)
	}
	return recs
}

// blobIDs returns the ids of the transaction's blob files.
func (t *txn) blobIDs() []uint64 {
	var ids []uint64
	for _, r := range t.recs {
		if r.blob != nil {
			ids = append(ids, r.blob.id)
		}
	}
	return ids
}

// syncBlobs makes the transaction's blob files durable.
func (t *txn) syncBlobs() error {
	if t.blobsSynced {
		return nil
	}
	if err := t.s.syncBlobs(t.records()); err != nil {
		return err
	}
	t.blobsSynced = true
	return nil
}

// dropBlobs removes the blob files of a transaction that will not
// commit. Caller holds opMu shared.
func (t *txn) dropBlobs() {
	for _, r := range t.recs {
		if r.blob != nil {
			r.waitSynced()
		}
	}
	t.s.removeBlobs(t.blobIDs())
	for _, r := range t.recs {
		r.blob = nil
	}
}

// Vote implements storage.Txn.
func (t *txn) Vote(ctx context.Context) error {
	if t.state != stateStoring {
		return fmt.Errorf("badgerstore: vote: %w", storage.ErrTxnState)
	}
	s := t.s
	if err := s.enter(ctx, "vote"); err != nil {
		t.end()
		return err
	}
	defer s.opMu.RUnlock()
	// Blob files are durable before the commit point, and synced before
	// the commit lock so that the lock is never held across their sync.
	if err := t.syncBlobs(); err != nil {
		t.end()
		t.dropBlobs()
		return fmt.Errorf("badgerstore: vote: %w", err)
	}
	s.syncer.enqueue()
	select {
	case s.commitLock <- struct{}{}:
	case <-ctx.Done():
		t.end()
		s.syncer.dequeue()
		t.dropBlobs()
		return fmt.Errorf("badgerstore: vote: waiting for the commit lock: %w", ctx.Err())
	case <-s.closing:
		t.end()
		s.syncer.dequeue()
		return fmt.Errorf("badgerstore: vote: %w", storage.ErrClosed)
	}
	if err := t.validate(); err != nil {
		t.end()
		<-s.commitLock
		s.syncer.dequeue()
		t.dropBlobs()
		return fmt.Errorf("badgerstore: vote: %w", err)
	}
	t.state = stateVoted
	return nil
}

// validate checks sizes and conflicts and stages the data if the
// transaction needs it. Caller holds the commit lock.
func (t *txn) validate() error {
	s := t.s
	var total int64
	for oid, r := range t.recs {
		if r.size > s.cfg.MaxObjectSize {
			return fmt.Errorf("object %s has %d bytes, above MaxObjectSize %d: %w", oid, r.size, s.cfg.MaxObjectSize, storage.ErrTooLarge)
		}
		total += r.size
	}
	if s.cfg.MaxTxnSize > 0 && total > s.cfg.MaxTxnSize {
		return fmt.Errorf("transaction has %d bytes of object data, above MaxTxnSize %d: %w", total, s.cfg.MaxTxnSize, storage.ErrTooLarge)
	}
	t.sortOIDs()

	last := s.lastWritten.Load()
	rtxn := s.db.NewTransactionAt(last, false)
	defer rtxn.Discard()
	for i, oid := range t.oids {
		var actual storage.TID
		item, err := rtxn.Get(t.objectKey(i))
		switch {
		case err == nil:
			actual = storage.TID(item.Version())
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("read %s: %w", oid, err)
		}
		if want := t.recs[oid].serial; want != actual {
			return &storage.ConflictError{OID: oid, Expected: want, Actual: actual}
		}
	}

	if t.fitsOneBatch() {
		return nil
	}
	t.staged = true
	t.stageVer = last + 1
	var nb [8]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return fmt.Errorf("staging nonce: %w", err)
	}
	t.nonce = binary.BigEndian.Uint64(nb[:])
	if err := t.stage(); err != nil {
		t.unstage()
		return err
	}
	return nil
}

// sortOIDs sets oids, ascending, and their object keys from recs.
func (t *txn) sortOIDs() {
	t.oids = make([]storage.OID, 0, len(t.recs))
	for oid := range t.recs {
		t.oids = append(t.oids, oid)
	}
	slices.Sort(t.oids)
	// One buffer for every key: badger copies a key when it commits it.
	t.keys = make([]byte, 0, 9*len(t.oids))
	for _, oid := range t.oids {
		t.keys = appendKey9(t.keys, prefixObject, uint64(oid))
	}
}

// objectKey is the object key of oids[i].
func (t *txn) objectKey(i int) []byte { return t.keys[9*i : 9*i+9 : 9*i+9] }

// entryCost is what one entry counts against badger's transaction size
// limit (as badger estimates it, plus the version suffix), and whether its
// value goes to the value log.
func (s *Store) entryCost(keyLen, valueLen int) (cost int64, inVlog bool) {
	const versionLen, pointerLen, metaLen, perEntry = 8, 12, 2, 10
	if int64(valueLen) >= s.cfg.ValueThreshold {
		return int64(keyLen) + versionLen + pointerLen + metaLen + perEntry, true
	}
	return int64(keyLen+valueLen) + versionLen + metaLen + perEntry, false
}

// fitsOneBatch reports whether the transaction commits as one badger
// transaction: within badger's limits with a margin (including half a
// value log file for value log data, as badger refuses a write that
// cannot fit one file) and, unless NoSync is set, with every value inline
// (see doc.go: value log data must be durable before the commit that
// points to it).
func (t *txn) fitsOneBatch() bool {
	s := t.s
	count := int64(len(t.oids) + 3) // records, transaction record, index, badger's commit marker
	var size, vlogBytes int64
	add := func(valueLen int) {
		c, inVlog := s.entryCost(9, valueLen)
		size += c
		if inVlog {
			vlogBytes += int64(valueLen)
		}
	}
	add(txnRecordLen(t.meta))
	add(8 * len(t.oids))
	for _, oid := range t.oids {
		r := t.recs[oid]
		if r.blob != nil {
			add(blobRefSize)
			add(blobIndexSize) // its b key
			count++
			continue
		}
		add(len(r.data))
	}
	if vlogBytes > 0 && !s.cfg.NoSync {
		return false
	}
	return count < s.maxCount*9/10 && size < s.maxSize*9/10 && vlogBytes <= s.cfg.ValueLogFileSize/2
}

// Finish implements storage.Txn.
func (t *txn) Finish(ctx context.Context) (storage.Commit, error) {
	return t.finish(ctx, 0, storage.Checksum{}, true)
}

// FinishAt implements storage.Txn.
func (t *txn) FinishAt(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, error) {
	return t.finish(ctx, tid, expect, false)
}

// FinishAtDeferred implements storage.DeferredFinisher: the commit is
// written and the lock released; wait joins the group sync that covers it.
func (t *txn) FinishAtDeferred(ctx context.Context, tid storage.TID, expect storage.Checksum) (storage.Commit, func() error, error) {
	c, err := t.write(ctx, tid, expect, false)
	if err != nil {
		return c, nil, err
	}
	return c, func() error { return t.waitDurable(c.TID) }, nil
}

func (t *txn) finish(ctx context.Context, tid storage.TID, expect storage.Checksum, newTID bool) (storage.Commit, error) {
	c, err := t.write(ctx, tid, expect, newTID)
	if err != nil {
		return c, err
	}
	return c, t.waitDurable(c.TID)
}

// waitDurable waits, without the commit lock, for a group sync that
// covers the commit of tid, then cleans up after a staged commit.
func (t *txn) waitDurable(tid storage.TID) error {
	if err := t.s.committedAt(tid); err != nil {
		return fmt.Errorf("badgerstore: finish at %s: %w", tid, err)
	}
	if t.staged {
		t.cleanup(tid)
	}
	return nil
}

// write commits the voted transaction at tid (or a new TID), releases the
// commit lock and returns before the commit is durable.
func (t *txn) write(ctx context.Context, tid storage.TID, expect storage.Checksum, newTID bool) (storage.Commit, error) {
	if t.state != stateVoted {
		return storage.Commit{}, fmt.Errorf("badgerstore: finish: %w", storage.ErrTxnState)
	}
	s := t.s
	// After a successful Vote, Finish fails only for I/O: a cancelled
	// context does not stop it.
	if err := s.enterOp("finish"); err != nil {
		return storage.Commit{}, err
	}
	defer s.opMu.RUnlock()
	last := storage.TID(s.lastWritten.Load())
	if newTID {
		tid = storage.NextTID(s.cfg.Now(), last)
	}
	if tid <= last {
		return storage.Commit{}, fmt.Errorf("badgerstore: finish at %s: last transaction is %s: %w", tid, last, storage.ErrTIDOrder)
	}
	chain := storage.NextChain(s.lastChain, tid, t.meta, t.digests())
	if !expect.IsZero() && chain != expect {
		return storage.Commit{}, fmt.Errorf("badgerstore: finish at %s: chain %s, expected %s: %w", tid, chain, expect, storage.ErrChainMismatch)
	}

	var err error
	if t.staged {
		err = t.commitStaged(tid, chain)
	} else {
		err = t.commitOneBatch(tid, chain)
	}
	if err != nil {
		t.end()
		<-s.commitLock
		s.syncer.dequeue()
		return storage.Commit{}, fmt.Errorf("badgerstore: finish at %s: %w", tid, err)
	}
	s.lastChain = chain
	s.lastWritten.Store(uint64(tid))
	s.oidMu.Lock()
	if len(t.oids) > 0 {
		s.bumpOID(t.oids[len(t.oids)-1])
	}
	s.oidMu.Unlock()
	if s.cfg.NoSync {
		s.publish(uint64(tid))
	}
	t.end()
	<-s.commitLock
	s.syncer.dequeue()
	return storage.Commit{TID: tid, Chain: chain}, nil
}

// digests returns the record digests of oids, in their order.
func (t *txn) digests() []storage.RecordDigest {
	digests := make([]storage.RecordDigest, len(t.oids))
	for i, oid := range t.oids {
		digests[i] = t.recs[oid].digest
	}
	return digests
}

// commitOneBatch writes the whole transaction as one badger transaction.
func (t *txn) commitOneBatch(tid storage.TID, chain storage.Checksum) error {
	w, err := t.batch(tid, chain)
	if err != nil {
		return err
	}
	defer w.Discard()
	err = w.CommitAt(uint64(tid), nil)
	if t.s.cfg.NoSync {
		// Only NoSync puts values in the value log here; see fitsOneBatch.
		t.s.vlogDirty.Store(true)
	}
	return err
}

// commitStaged commits a staged transaction: the intent record is the
// commit point; then the records, index and transaction record are
// written from memory in as many badger transactions as needed. A crash
// after the commit point is finished by Open from the staging area.
func (t *txn) commitStaged(tid storage.TID, chain storage.Checksum) error {
	s := t.s
	w := s.db.NewTransactionAt(math.MaxUint64, true)
	defer w.Discard()
	if err := w.SetEntry(badger.NewEntry(intentKey(tid), encodeIntent(t.nonce, chain)).WithMeta(formatV1)); err != nil {
		return err
	}
	if err := w.CommitAt(uint64(tid), nil); err != nil {
		t.unstage()
		return err
	}
	// Applying must not start before the commit point is durable: a crash
	// could otherwise keep records without their commit.
	if err := s.durable(); err != nil {
		return err
	}
	err := s.apply(tid, chain, t.meta, t.oids, func(oid storage.OID) ([]byte, byte, error) {
		v, meta := t.recs[oid].value()
		return v, meta, nil
	})
	if err != nil {
		// The transaction is committed but only Open can finish it.
		s.fail(fmt.Errorf("apply committed transaction %s: %w", tid, err))
	}
	return err
}

// stage writes the records and the metadata under the staging prefix.
func (t *txn) stage() error {
	w := t.s.newChunkWriter(t.stageVer)
	if err := w.set(stageKey9(t.nonce), encodeTxnRecord(txnRecord{Meta: t.meta})); err != nil {
		return err
	}
	for _, oid := range t.oids {
		v, meta := t.recs[oid].value()
		if err := w.setMeta(stageKey(t.nonce, oid), v, meta); err != nil {
			return err
		}
	}
	if err := w.flush(); err != nil {
		return err
	}
	// The staged values must be durable before the commit point.
	return t.s.durable()
}

// unstage deletes the staging keys; failures leave them to the next Open.
func (t *txn) unstage() {
	w := t.s.newChunkWriter(t.stageVer + 1)
	err := w.del(stageKey9(t.nonce))
	for _, oid := range t.oids {
		if err != nil {
			break
		}
		err = w.del(stageKey(t.nonce, oid))
	}
	if err == nil {
		err = w.flush()
	}
	if err != nil {
		t.s.log.Warn("discarding staged data failed; the next Open discards it", zap.Error(err))
	}
}

// cleanup removes the intent record of a durable staged transaction, then
// its staging keys.
func (t *txn) cleanup(tid storage.TID) {
	if err := t.s.deleteIntent(tid); err != nil {
		t.s.log.Warn("removing the intent record failed; the next Open finishes it", zap.Stringer("tid", tid), zap.Error(err))
		return
	}
	t.unstage()
}

func (s *Store) deleteIntent(tid storage.TID) error {
	w := s.db.NewTransactionAt(math.MaxUint64, true)
	defer w.Discard()
	if err := w.Delete(intentKey(tid)); err != nil {
		return err
	}
	return w.CommitAt(uint64(tid)+1, nil)
}

// end marks the transaction over, which the group sync counts (see
// groupSync.opened).
func (t *txn) end() {
	if t.state != stateDone {
		t.state = stateDone
		t.s.syncer.closed()
	}
}

// Abort implements storage.Txn. It removes the transaction's blob files
// (after Close, the next Open does).
func (t *txn) Abort(ctx context.Context) error {
	if t.state == stateDone {
		return nil
	}
	t.s.opMu.RLock()
	if !t.s.closed.Load() {
		if t.state == stateVoted && t.staged {
			t.unstage()
		}
		t.dropBlobs()
	}
	t.s.opMu.RUnlock()
	if t.state == stateVoted {
		<-t.s.commitLock
		t.s.syncer.dequeue()
	}
	t.end()
	return nil
}

// apply writes a committed transaction's records, index and transaction
// record at version tid, in as many badger transactions as needed, with
// the index key of every blob file. get returns a record's value and its
// UserMeta (formatV1 or formatBlob).
func (s *Store) apply(tid storage.TID, chain storage.Checksum, meta storage.TxnMeta, oids []storage.OID, get func(storage.OID) ([]byte, byte, error)) error {
	w := s.newChunkWriter(uint64(tid))
	for _, oid := range oids {
		v, m, err := get(oid)
		if err != nil {
			return err
		}
		if m == formatBlob {
			ref, err := decodeBlobRef(v)
			if err != nil {
				return fmt.Errorf("staged %s: %w", oid, err)
			}
			if err := w.set(blobIndexKey(ref.id), encodeBlobIndex(oid, tid)); err != nil {
				return err
			}
		}
		if err := w.setMeta(objectKey(oid), v, m); err != nil {
			return err
		}
	}
	if err := w.set(recordsKey(tid), encodeOIDs(oids)); err != nil {
		return err
	}
	if err := w.set(txnKey(tid), encodeTxnRecord(txnRecord{Chain: chain, Meta: meta})); err != nil {
		return err
	}
	return w.flush()
}

// encodeIntent: staging nonce (8) ‖ chain (32).
func encodeIntent(nonce uint64, chain storage.Checksum) []byte {
	return append(encodeUint64(nonce), chain[:]...)
}

func decodeIntent(b []byte) (nonce uint64, chain storage.Checksum, err error) {
	if len(b) != 8+storage.ChecksumSize {
		return 0, chain, fmt.Errorf("%w: intent record of %d bytes, want %d", ErrCorrupt, len(b), 8+storage.ChecksumSize)
	}
	copy(chain[:], b[8:])
	return binary.BigEndian.Uint64(b), chain, nil
}

// chunkWriter writes entries at one version in badger transactions that
// each stay well inside badger's limits.
type chunkWriter struct {
	s              *Store
	version        uint64
	w              *badger.Txn
	count          int64
	size, valBytes int64
}

// maxChunkValueBytes bounds the object data one chunk keeps referenced.
const maxChunkValueBytes = 64 << 20

func (s *Store) newChunkWriter(version uint64) *chunkWriter {
	return &chunkWriter{s: s, version: version}
}

// add makes room for an entry of key k and a value of vlen bytes, then
// lets write add it to the current badger transaction.
func (c *chunkWriter) add(k []byte, vlen int, write func(*badger.Txn) error) error {
	cost, _ := c.s.entryCost(len(k), vlen)
	if c.w != nil && (c.count+2 >= c.s.maxCount/2 || c.size+cost >= c.s.maxSize/2 || c.valBytes+int64(vlen) > maxChunkValueBytes) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if c.w == nil {
		c.w = c.s.db.NewTransactionAt(math.MaxUint64, true)
	}
	c.count++
	c.size += cost
	c.valBytes += int64(vlen)
	if err := write(c.w); err != nil {
		c.w.Discard()
		c.w = nil
		return err
	}
	return nil
}

func (c *chunkWriter) set(k, v []byte) error { return c.setMeta(k, v, formatV1) }

func (c *chunkWriter) setMeta(k, v []byte, meta byte) error {
	return c.add(k, len(v), func(w *badger.Txn) error { return w.SetEntry(badger.NewEntry(k, v).WithMeta(meta)) })
}

func (c *chunkWriter) del(k []byte) error {
	return c.add(k, 0, func(w *badger.Txn) error { return w.Delete(k) })
}

func (c *chunkWriter) flush() error {
	if c.w == nil {
		return nil
	}
	w := c.w
	c.w, c.count, c.size, c.valBytes = nil, 0, 0, 0
	defer w.Discard()
	err := w.CommitAt(c.version, nil)
	c.s.vlogDirty.Store(true)
	return err
}

func stageKey9(nonce uint64) []byte { return key9(prefixStage, nonce) }
