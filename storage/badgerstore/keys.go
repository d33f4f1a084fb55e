package badgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/repld/repld/storage"
)

// ErrCorrupt reports bytes on disk that do not decode: a damaged key or
// value. Operations that meet one fail with an error wrapping it.
var ErrCorrupt = errors.New("badgerstore: corrupt data")

// Key prefixes; the layout is documented in doc.go.
const (
	prefixObject   = 'o' // o ‖ oid → object data, version = serial
	prefixTxn      = 't' // t ‖ tid → chain ‖ metadata, version = tid
	prefixRecords  = 'r' // r ‖ tid → ascending OIDs written by tid, version = tid
	prefixIntent   = 'i' // i ‖ tid → staging nonce of a committed, not yet applied transaction
	prefixStage    = 's' // s ‖ nonce ‖ oid → staged object data
	prefixBlob     = 'b' // b ‖ file id → oid ‖ tid of the revision in that blob file, version = tid
	keyOIDCounter  = 'n' // n → first OID not reserved
	keyPackHorizon = 'p' // p → pack horizon
)

// formatV1 is the UserMeta byte of every value this version writes except
// blob references; a value with another one was not written by this store.
const formatV1 byte = 1

// formatBlob is the UserMeta byte of an object revision (or staged
// object) whose data is in a blob file: the value is an encoded blobRef.
const formatBlob byte = 2

func key9(prefix byte, v uint64) []byte { return appendKey9(make([]byte, 0, 9), prefix, v) }

// appendKey9 appends the one-byte-prefix key of v to b.
func appendKey9(b []byte, prefix byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, prefix), v)
}

func objectKey(oid storage.OID) []byte  { return key9(prefixObject, uint64(oid)) }
func txnKey(tid storage.TID) []byte     { return key9(prefixTxn, uint64(tid)) }
func recordsKey(tid storage.TID) []byte { return key9(prefixRecords, uint64(tid)) }
func intentKey(tid storage.TID) []byte  { return key9(prefixIntent, uint64(tid)) }

func stageKey(nonce uint64, oid storage.OID) []byte {
	k := make([]byte, 17)
	k[0] = prefixStage
	binary.BigEndian.PutUint64(k[1:], nonce)
	binary.BigEndian.PutUint64(k[9:], uint64(oid))
	return k
}

// decodeKey9 returns the 8-byte number of a one-byte-prefix key.
func decodeKey9(k []byte, prefix byte) (uint64, error) {
	if len(k) != 9 || k[0] != prefix {
		return 0, fmt.Errorf("%w: key %x is not a %q key of 9 bytes", ErrCorrupt, k, prefix)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// txnRecord is the value under t ‖ tid.
type txnRecord struct {
	Chain storage.Checksum
	Meta  storage.TxnMeta
}

// encodeTxnRecord: chain (32) ‖ for user, description, extension: length
// (4, big-endian) ‖ bytes.
func encodeTxnRecord(r txnRecord) []byte {
	return appendTxnRecord(make([]byte, 0, txnRecordLen(r.Meta)), r)
}

// txnRecordLen is the length of the encoded transaction record of meta.
func txnRecordLen(meta storage.TxnMeta) int {
	return storage.ChecksumSize + 3*4 + len(meta.User) + len(meta.Description) + len(meta.Extension)
}

// appendTxnRecord appends the encoding of r to b.
func appendTxnRecord(b []byte, r txnRecord) []byte {
	b = append(b, r.Chain[:]...)
	for _, f := range [3][]byte{r.Meta.User, r.Meta.Description, r.Meta.Extension} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeTxnRecord decodes strictly: every length must fit and no byte may
// be left over. The result does not alias b.
func decodeTxnRecord(b []byte) (txnRecord, error) {
	var r txnRecord
	if len(b) < storage.ChecksumSize {
		return r, fmt.Errorf("%w: transaction record of %d bytes is shorter than its checksum", ErrCorrupt, len(b))
	}
	copy(r.Chain[:], b)
	rest := b[storage.ChecksumSize:]
	var fields [3][]byte
	for i, name := range [3]string{"user", "description", "extension"} {
		if len(rest) < 4 {
			return r, fmt.Errorf("%w: transaction record truncated before the %s length", ErrCorrupt, name)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return r, fmt.Errorf("%w: transaction record %s length %d exceeds the %d bytes left", ErrCorrupt, name, n, len(rest))
		}
		if n > 0 {
			fields[i] = append([]byte(nil), rest[:n]...)
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%w: transaction record has %d trailing bytes", ErrCorrupt, len(rest))
	}
	r.Meta = storage.TxnMeta{User: fields[0], Description: fields[1], Extension: fields[2]}
	return r, nil
}

// encodeOIDs: 8 big-endian bytes per OID, ascending.
func encodeOIDs(oids []storage.OID) []byte { return appendOIDs(make([]byte, 0, 8*len(oids)), oids) }

// appendOIDs appends the encoding of oids to b.
func appendOIDs(b []byte, oids []storage.OID) []byte {
	for _, o := range oids {
		b = binary.BigEndian.AppendUint64(b, uint64(o))
	}
	return b
}

// decodeOIDs requires a whole number of OIDs in strictly ascending order.
func decodeOIDs(b []byte) ([]storage.OID, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: record index of %d bytes is not a multiple of 8", ErrCorrupt, len(b))
	}
	oids := make([]storage.OID, len(b)/8)
	for i := range oids {
		oids[i] = storage.OID(binary.BigEndian.Uint64(b[8*i:]))
		if i > 0 && oids[i] <= oids[i-1] {
			return nil, fmt.Errorf("%w: record index not ascending at entry %d (%s after %s)", ErrCorrupt, i, oids[i], oids[i-1])
		}
	}
	return oids, nil
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte, what string) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %s value of %d bytes, want 8", ErrCorrupt, what, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
