package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// ChecksumSize is the size of a chain checksum, a SHA-256 value.
const ChecksumSize = sha256.Size

// Checksum is the chain checksum of a committed transaction. The zero value
// is the chain before the first transaction.
type Checksum [ChecksumSize]byte

// String formats the checksum as 64 hex digits.
func (c Checksum) String() string { return hex.EncodeToString(c[:]) }

// IsZero reports whether c is the chain before the first transaction.
func (c Checksum) IsZero() bool { return c == Checksum{} }

// RecordDigest is what the chain checksum covers of one record: its OID and
// the SHA-256 of its data.
type RecordDigest struct {
	OID        OID
	DataSHA256 [sha256.Size]byte
}

// DigestRecord returns the digest of one record.
func DigestRecord(oid OID, data []byte) RecordDigest {
	return RecordDigest{OID: oid, DataSHA256: sha256.Sum256(data)}
}

// NextChain computes the chain checksum of a transaction, a contract every
// node and every version computes to the same bytes:
//
//	SHA-256( prev (32 bytes)
//	       ‖ tid (8 bytes, big-endian)
//	       ‖ len(user) (4 bytes, big-endian) ‖ user
//	       ‖ len(description) ‖ description
//	       ‖ len(extension) ‖ extension
//	       ‖ for each record in ascending OID order: oid (8 bytes, big-endian) ‖ SHA-256(data) )
//
// records is sorted in place by OID; a transaction stores an OID at most
// once (a later Store of the same OID replaces the earlier one).
func NextChain(prev Checksum, tid TID, meta TxnMeta, records []RecordDigest) Checksum {
	slices.SortFunc(records, func(a, b RecordDigest) int {
		switch {
		case a.OID < b.OID:
			return -1
		case a.OID > b.OID:
			return 1
		}
		return 0
	})
	h := sha256.New()
	h.Write(prev[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(tid))
	h.Write(b[:])
	for _, field := range [][]byte{meta.User, meta.Description, meta.Extension} {
		binary.BigEndian.PutUint32(b[:4], uint32(len(field)))
		h.Write(b[:4])
		h.Write(field)
	}
	for _, r := range records {
		binary.BigEndian.PutUint64(b[:], uint64(r.OID))
		h.Write(b[:])
		h.Write(r.DataSHA256[:])
	}
	var sum Checksum
	h.Sum(sum[:0])
	return sum
}
