package storage

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// OID names an object. OIDs are never reused: NewOID never returns an OID
// that has been handed out or stored before, including OIDs written through
// the replication path.
type OID uint64

// String formats the OID as 16 hex digits, as ZODB tools print it.
func (o OID) String() string { return fmt.Sprintf("%016x", uint64(o)) }

// Bytes returns the OID as 8 big-endian bytes.
func (o OID) Bytes() [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(o))
	return b
}

// ParseOID parses 16 (or fewer) hex digits, with or without a 0x prefix.
func ParseOID(s string) (OID, error) {
	v, err := parseHex64(s)
	if err != nil {
		return 0, fmt.Errorf("parse OID %q: %w", s, err)
	}
	return OID(v), nil
}

func parseHex64(s string) (uint64, error) {
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
	}
	if s == "" || len(s) > 16 {
		return 0, fmt.Errorf("want 1 to 16 hex digits")
	}
	return strconv.ParseUint(s, 16, 64)
}

// TxnMeta is the metadata of a transaction, as in ZODB: who, why, and an
// opaque extension (ZODB keeps a pickled dict there). Nil and empty are the
// same.
type TxnMeta struct {
	User        []byte
	Description []byte
	Extension   []byte
}

// Commit describes a committed transaction.
type Commit struct {
	TID   TID
	Chain Checksum
}

// Record is one object revision written by a transaction.
type Record struct {
	OID  OID
	Data []byte
}

// Transaction is a committed transaction as an Iterator yields it. Records
// are in ascending OID order; records removed by Pack are omitted, metadata
// and chain are always present.
type Transaction struct {
	TID     TID
	Meta    TxnMeta
	Chain   Checksum
	Records []Record
}

// Revision is one revision of an object, as History returns it.
type Revision struct {
	// TID is the transaction that wrote this revision (its serial).
	TID  TID
	Data []byte
}
