package badgerstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/repld/repld/storage"
)

// Blob files: object data of at least Config.BlobThreshold bytes lives in
// a file of its own under <Dir>/blobs, written once; badger holds a small
// reference to it (see doc.go, "Blob files").

const (
	// blobDirName is the directory under Config.Dir that holds blob files.
	blobDirName = "blobs"
	// blobExt ends the name of every blob file: 16 hex digits of the
	// file id, then blobExt.
	blobExt = ".blob"
	// blobRefSize is the encoded size of a blobRef.
	blobRefSize = 8 + 8 + sha256.Size
	// blobIndexSize is the encoded size of a blob index value.
	blobIndexSize = 8 + 8
)

// errBlobPacked reports that a blob file is gone because Pack removed its
// revision while a reader was on its way to it; the reader retries (or
// skips the revision) with the new horizon.
var errBlobPacked = errors.New("badgerstore: revision packed while being read")

// blobRef is the value of an object revision kept in a blob file: the
// file's id, the data's size and its SHA-256 (the one the chain covers),
// so that a wrong or truncated file is detected on read.
type blobRef struct {
	id   uint64
	size uint64
	sum  [sha256.Size]byte
}

// encodeBlobRef: id (8) ‖ size (8) ‖ SHA-256 (32).
func encodeBlobRef(r blobRef) []byte {
	b := make([]byte, 0, blobRefSize)
	b = binary.BigEndian.AppendUint64(b, r.id)
	b = binary.BigEndian.AppendUint64(b, r.size)
	return append(b, r.sum[:]...)
}

// decodeBlobRef decodes strictly: exactly blobRefSize bytes, and a size
// that fits an int.
func decodeBlobRef(b []byte) (blobRef, error) {
	var r blobRef
	if len(b) != blobRefSize {
		return r, fmt.Errorf("%w: blob reference of %d bytes, want %d", ErrCorrupt, len(b), blobRefSize)
	}
	r.id = binary.BigEndian.Uint64(b)
	r.size = binary.BigEndian.Uint64(b[8:])
	copy(r.sum[:], b[16:])
	if r.size > math.MaxInt {
		return r, fmt.Errorf("%w: blob reference to file %016x claims %d bytes", ErrCorrupt, r.id, r.size)
	}
	return r, nil
}

// encodeBlobIndex is the value under b ‖ id: the OID (8) ‖ TID (8) of the
// revision whose data the file holds.
func encodeBlobIndex(oid storage.OID, tid storage.TID) []byte {
	b := make([]byte, 0, blobIndexSize)
	b = binary.BigEndian.AppendUint64(b, uint64(oid))
	return binary.BigEndian.AppendUint64(b, uint64(tid))
}

func decodeBlobIndex(b []byte) (storage.OID, storage.TID, error) {
	if len(b) != blobIndexSize {
		return 0, 0, fmt.Errorf("%w: blob index value of %d bytes, want %d", ErrCorrupt, len(b), blobIndexSize)
	}
	return storage.OID(binary.BigEndian.Uint64(b)), storage.TID(binary.BigEndian.Uint64(b[8:])), nil
}

func blobIndexKey(id uint64) []byte { return key9(prefixBlob, id) }

func blobName(id uint64) string { return fmt.Sprintf("%016x%s", id, blobExt) }

// parseBlobName returns the id of a blob file name.
func parseBlobName(name string) (uint64, bool) {
	hex, ok := strings.CutSuffix(name, blobExt)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil
}

func (s *Store) blobPath(id uint64) string { return filepath.Join(s.blobDir, blobName(id)) }

// newRecord returns the record of a new revision. Data of a blob's size
// is written to a new blob file while its digest is computed (the two
// take about as long, and a transaction's Store is where the data is in
// hand); the file's sync then starts in the background, and Vote waits
// for it.
func (s *Store) newRecord(oid storage.OID, serial storage.TID, data []byte) (*record, error) {
	r := &record{serial: serial, data: data, size: int64(len(data))}
	if !s.isBlob(r.size) {
		r.digest = storage.DigestRecord(oid, data)
		return r, nil
	}
	ref := &blobRef{size: uint64(len(data))}
	written, synced := make(chan error, 1), make(chan error, 1)
	go s.writeBlob(data, ref, written, synced)
	r.digest = storage.DigestRecord(oid, data)
	if err := <-written; err != nil {
		return nil, err
	}
	ref.sum = r.digest.DataSHA256
	r.blob, r.synced, r.data = ref, synced, nil
	return r, nil
}

// writeBlob creates a blob file with a fresh random id, sets ref.id and
// writes data to it, then reports on written. If that succeeded, it syncs
// the file (unless NoSync) and reports on synced.
func (s *Store) writeBlob(data []byte, ref *blobRef, written, synced chan<- error) {
	var (
		f    *os.File
		path string
	)
	for {
		var nb [8]byte
		if _, err := rand.Read(nb[:]); err != nil {
			written <- fmt.Errorf("blob file id: %w", err)
			return
		}
		ref.id = binary.BigEndian.Uint64(nb[:])
		path = s.blobPath(ref.id)
		var err error
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // another file has this id: draw again
		}
		if err != nil {
			written <- fmt.Errorf("create blob file: %w", err)
			return
		}
		break
	}
	if err := s.writeBlobFile(f, data); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		written <- fmt.Errorf("write blob file %s: %w", path, err)
		return
	}
	written <- nil
	var err error
	if !s.cfg.NoSync {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync blob file %s: %w", path, err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close blob file %s: %w", path, cerr)
	}
	synced <- err
}

// waitSynced waits for the sync of r's blob file and returns its result.
func (r *record) waitSynced() error {
	if r.synced != nil {
		r.syncErr = <-r.synced
		r.synced = nil
	}
	return r.syncErr
}

// syncBlobs waits until the blob files of these records are durable,
// then syncs the blobs directory (their names), so the files survive a
// power loss once a commit that refers to them does.
func (s *Store) syncBlobs(recs []*record) error {
	n := 0
	for _, r := range recs {
		if r.blob == nil {
			continue
		}
		n++
		if err := r.waitSynced(); err != nil {
			return err
		}
	}
	if n == 0 || s.cfg.NoSync {
		return nil
	}
	return syncDir(s.blobDir)
}

// removeBlobs removes the blob files with these ids; a failure only
// leaves a file that the next Open removes.
func (s *Store) removeBlobs(ids []uint64) {
	for _, id := range ids {
		if err := os.Remove(s.blobPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("removing a blob file failed; the next Open removes it", zap.String("file", s.blobPath(id)), zap.Error(err))
		}
	}
}

// syncDir fsyncs a directory, so the names created in it are durable.
func syncDir(dir string) error { return syncPath(dir, os.O_RDONLY, false) }

// objectValue returns the data of an object revision: the inline value,
// or the content of its blob file. The result is a fresh buffer.
func (s *Store) objectValue(item *badger.Item, oid storage.OID) ([]byte, error) {
	switch m := item.UserMeta(); m {
	case formatV1:
		b, err := item.ValueCopy(nil)
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", oid, storage.TID(item.Version()), err)
		}
		return b, nil
	case formatBlob:
		var ref blobRef
		err := item.Value(func(v []byte) error {
			var err error
			ref, err = decodeBlobRef(v)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read %s at %s: %w", oid, storage.TID(item.Version()), err)
		}
		return s.readBlob(oid, storage.TID(item.Version()), ref)
	default:
		return nil, fmt.Errorf("%w: object %s version %d has format %d, want %d or %d", ErrCorrupt, oid, item.Version(), m, formatV1, formatBlob)
	}
}

// readBlob reads and checks the blob file of oid's revision tid. A file
// that is missing because Pack removed the revision meanwhile is
// errBlobPacked; any other missing, short, long or different file is
// ErrCorrupt.
func (s *Store) readBlob(oid storage.OID, tid storage.TID, ref blobRef) ([]byte, error) {
	path := s.blobPath(ref.id)
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: object %s revision %s: blob file %s: %s", ErrCorrupt, oid, tid, path, fmt.Sprintf(format, args...))
	}
	// Pack publishes its horizon, waits for the readers holding the gate,
	// then removes files: a reader that finds its file gone under the
	// gate sees the horizon that packed it.
	s.blobGate.RLock()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		packed, perr := s.packedNow(oid, tid)
		s.blobGate.RUnlock()
		switch {
		case perr != nil:
			return nil, perr
		case packed:
			return nil, errBlobPacked
		}
		return nil, corrupt("missing")
	}
	s.blobGate.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", oid, tid, err)
	}
	defer f.Close()
	// An open file stays readable after Pack removes its name.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: stat %s: %w", oid, tid, path, err)
	}
	if fi.Size() < 0 || uint64(fi.Size()) != ref.size {
		return nil, corrupt("%d bytes, want %d", fi.Size(), ref.size)
	}
	data := make([]byte, ref.size)
	if _, err := io.ReadFull(f, data); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, corrupt("shorter than %d bytes", ref.size)
		}
		return nil, fmt.Errorf("read %s at %s: %s: %w", oid, tid, path, err)
	}
	if n, _ := f.Read(make([]byte, 1)); n != 0 {
		return nil, corrupt("longer than %d bytes", ref.size)
	}
	if sum := sha256.Sum256(data); sum != ref.sum {
		return nil, corrupt("content has SHA-256 %x, want %x", sum, ref.sum)
	}
	return data, nil
}

// packedNow reports whether Pack's current horizon removed oid's revision
// tid: a newer revision is at or before the horizon.
func (s *Store) packedNow(oid storage.OID, tid storage.TID) (bool, error) {
	h := s.horizon.Load()
	if uint64(tid) >= h {
		return false, nil
	}
	rtxn := s.db.NewTransactionAt(h, false)
	defer rtxn.Discard()
	item, err := rtxn.Get(objectKey(oid))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read %s: %w", oid, err)
	}
	return storage.TID(item.Version()) > tid, nil
}

// openBlobs creates the blobs directory if needed and removes the files
// no committed revision refers to (a crash between Store and the commit
// point, or during Pack), then the files of revisions packed before a
// crash. It runs after recover, which writes the index keys of redone
// transactions.
func (s *Store) openBlobs() error {
	if err := os.MkdirAll(s.blobDir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", s.blobDir, err)
	}
	// A new directory's name must be durable before files in it are.
	if err := syncDir(s.cfg.Dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return fmt.Errorf("list %s: %w", s.blobDir, err)
	}
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	removed, kept := 0, 0
	for _, e := range entries {
		name := e.Name()
		id, ok := parseBlobName(name)
		if ok {
			_, err := rtxn.Get(blobIndexKey(id))
			if err == nil {
				kept++
				continue
			}
			if !errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("read blob index of %s: %w", name, err)
			}
		} else if !e.Type().IsRegular() {
			s.log.Warn("unexpected entry in the blob directory left alone", zap.String("name", filepath.Join(s.blobDir, name)))
			continue
		}
		if err := os.Remove(filepath.Join(s.blobDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove orphan blob file: %w", err)
		}
		removed++
	}
	if removed > 0 {
		s.log.Info("removed blob files of uncommitted transactions", zap.Int("files", removed), zap.Int("kept", kept))
	}
	return s.dropPackedBlobs(s.horizon.Load())
}

// dropPackedBlobs deletes the index keys and the files of the blob
// revisions that the pack horizon h removed. Index keys go first and
// durably, so a crash in between leaves only files without an index key,
// which Open removes.
func (s *Store) dropPackedBlobs(h uint64) error {
	if h == 0 {
		return nil
	}
	rtxn := s.db.NewTransactionAt(math.MaxUint64, false)
	defer rtxn.Discard()
	atH := s.db.NewTransactionAt(h, false)
	defer atH.Discard()
	it := rtxn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixBlob}})
	defer it.Close()
	var ids []uint64
	w := s.newChunkWriter(h)
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		id, err := decodeKey9(item.Key(), prefixBlob)
		if err != nil {
			return err
		}
		b, err := itemValue(item, "blob index")
		if err != nil {
			return err
		}
		oid, tid, err := decodeBlobIndex(b)
		if err != nil {
			return err
		}
		if uint64(tid) >= h {
			continue
		}
		cur, err := atH.Get(objectKey(oid))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // nothing newer packed it
		}
		if err != nil {
			return fmt.Errorf("read %s at the pack horizon: %w", oid, err)
		}
		if storage.TID(cur.Version()) <= tid {
			continue // still the revision current at the horizon
		}
		if err := w.del(blobIndexKey(id)); err != nil {
			return err
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil
	}
	if err := w.flush(); err != nil {
		return err
	}
	if err := s.durable(); err != nil {
		return err
	}
	// Wait for the readers that may have seen an older horizon.
	s.blobGate.Lock()
	//lint:ignore SA2001 an empty critical section is the barrier
	s.blobGate.Unlock()
	s.removeBlobs(ids)
	s.log.Debug("removed blob files of packed revisions", zap.Int("files", len(ids)))
	return nil
}

// writebackChunk is how much of a blob is written before its writeback
// to the disk is started.
const writebackChunk = 4 << 20

// writeStartingWriteback writes data to f in chunks and, if writeback is
// set, starts each chunk's writeback to the disk as soon as it is
// written, so the disk works while the rest is written and hashed and the
// sync that follows has little left to do.
func writeStartingWriteback(f *os.File, data []byte, writeback bool) error {
	for off := 0; off < len(data); off += writebackChunk {
		chunk := data[off:min(off+writebackChunk, len(data))]
		if _, err := f.Write(chunk); err != nil {
			return err
		}
		if writeback {
			startWriteback(f, int64(off), int64(len(chunk)))
		}
	}
	return nil
}
