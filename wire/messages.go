package wire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Method names of the built-in message kinds. A method name is the first
// element of every message and selects the Go type of its arguments.
const (
	MethodBegin     = "begin"
	MethodStore     = "store"
	MethodVote      = "vote"
	MethodFinish    = "finish"
	MethodAbort     = "abort"
	MethodPack      = "pack"
	MethodHeartbeat = "heartbeat"
	MethodLive      = "live"
	MethodReplay    = "replay"
	MethodTxn       = "txn"
	MethodHello     = "hello"
	MethodReceived  = "received"
	MethodVoted     = "voted"
	MethodApplied   = "applied"
	MethodFailure   = "failure"
)

// Message is one application message kind: a pointer to a struct encoded as
// a CBOR array (`cbor:",toarray"`), whose fields, in order, are the message's
// arguments. Method names the kind on the wire.
//
// toarray needs exact element counts, so a kind never gains or loses a field:
// a changed kind is a new kind with a new method name (for example
// "store2"), and both sides keep the old one until no node sends it.
type Message interface {
	Method() string
}

// Payloader is a Message whose last argument is a byte string that travels
// without being copied: the encoder hands it out as a separate buffer
// (AppendHead, MarshalBuffers) and the decoder returns it as a slice of the
// input. Payload must return that last field and SetPayload must set it.
type Payloader interface {
	Message
	Payload() []byte
	SetPayload(data []byte)
}

// FromPrimary is a Message sent by a primary to its replicas. Its first
// argument is the primary's epoch: a node refuses a message whose epoch is
// lower than the highest it has seen, so a deposed primary cannot write.
type FromPrimary interface {
	Message
	PrimaryEpoch() uint64
}

// Chain is a chain checksum value: a SHA-256 digest. On the wire it is a
// byte string of exactly 32 bytes; any other length is malformed.
type Chain [32]byte

// UnmarshalBinary sets c from a CBOR byte string's contents. The decoder
// calls it instead of filling the array itself, because the generic array
// fill would silently truncate or zero-pad a wrong-length value.
func (c *Chain) UnmarshalBinary(b []byte) error {
	if len(b) != len(c) {
		return fmt.Errorf("chain value is %d bytes, want %d", len(b), len(c))
	}
	copy(c[:], b)
	return nil
}

// String returns the chain value as 64 hex digits.
func (c Chain) String() string { return hex.EncodeToString(c[:]) }

// FailureCode classifies a replica's failure report. Codes are part of the
// wire contract: never renumber one, only add.
type FailureCode uint64

// Failure codes a replica reports in a Failure message.
const (
	// FailureUnknown is a failure that fits no other code. Receivers treat
	// codes they do not know as FailureUnknown, so a newer replica's report
	// is never lost.
	FailureUnknown FailureCode = 0
	// FailureStorage is a local storage error (I/O, disk full, resources).
	FailureStorage FailureCode = 1
	// FailureChainMismatch means the replica's chain checksum after applying
	// a transaction differs from the primary's.
	FailureChainMismatch FailureCode = 2
	// FailureProtocol is a malformed, unexpected or undecodable message.
	FailureProtocol FailureCode = 3
	// FailureConflict means the replica's data diverges from the primary's,
	// for example a store whose serial is not the object's current TID.
	FailureConflict FailureCode = 4
	// FailureOutOfOrder is a message out of stream order: a gap, a repeated
	// or unknown seq, or a TID not above the last applied one.
	FailureOutOfOrder FailureCode = 5
)

// String returns the code's name, or "code(N)" for a code this version does
// not know.
func (c FailureCode) String() string {
	switch c {
	case FailureUnknown:
		return "unknown"
	case FailureStorage:
		return "storage"
	case FailureChainMismatch:
		return "chain-mismatch"
	case FailureProtocol:
		return "protocol"
	case FailureConflict:
		return "conflict"
	case FailureOutOfOrder:
		return "out-of-order"
	}
	return fmt.Sprintf("code(%d)", uint64(c))
}

// Begin opens transaction Seq on the replicas, with ZODB's transaction
// metadata. Wire: ["begin", [epoch, seq, user, description, extension]].
type Begin struct {
	_           struct{} `cbor:",toarray"`
	Epoch       uint64
	Seq         uint64
	User        []byte
	Description []byte
	Extension   []byte
}

// Store carries one object revision of transaction Seq. Serial is the
// revision the primary's client based it on (0 for a new object). Data is
// last so that it is the trailing bytes of the encoding and is never copied
// by the codec. Wire: ["store", [epoch, seq, oid, serial, data]].
type Store struct {
	_      struct{} `cbor:",toarray"`
	Epoch  uint64
	Seq    uint64
	OID    uint64
	Serial uint64
	Data   []byte
}

// Vote asks the replicas to validate transaction Seq.
// Wire: ["vote", [epoch, seq]].
type Vote struct {
	_     struct{} `cbor:",toarray"`
	Epoch uint64
	Seq   uint64
}

// Finish commits transaction Seq at TID; Chain is the primary's chain value
// after it, which the replica must reproduce.
// Wire: ["finish", [epoch, seq, tid, chain]].
type Finish struct {
	_     struct{} `cbor:",toarray"`
	Epoch uint64
	Seq   uint64
	TID   uint64
	Chain Chain
}

// Abort drops transaction Seq. Wire: ["abort", [epoch, seq]].
type Abort struct {
	_     struct{} `cbor:",toarray"`
	Epoch uint64
	Seq   uint64
}

// Pack replicates a pack of revisions before TID Before.
// Wire: ["pack", [epoch, before]].
type Pack struct {
	_      struct{} `cbor:",toarray"`
	Epoch  uint64
	Before uint64
}

// Heartbeat tells replicas the primary is alive and its last committed TID.
// Wire: ["heartbeat", [epoch, last_tid]].
type Heartbeat struct {
	_       struct{} `cbor:",toarray"`
	Epoch   uint64
	LastTID uint64
}

// Live tells one replica that its catch-up is over: every transaction with
// a seq at or above NextSeq will reach it whole from its begin on the live
// stream, and its replay ended at TID. Live seqs start at 1, so a replay's
// seq 0 never collides with them.
// Wire: ["live", [epoch, next_seq, tid]].
type Live struct {
	_       struct{} `cbor:",toarray"`
	Epoch   uint64
	NextSeq uint64
	TID     uint64
}

// Hello is a replica's greeting: its name, the highest epoch it has seen,
// and its last committed TID with the chain value there, from which the
// primary decides to replay, resync or quarantine it.
// Wire: ["hello", [node, epoch, last_tid, chain]].
type Hello struct {
	_       struct{} `cbor:",toarray"`
	Node    string
	Epoch   uint64
	LastTID uint64
	Chain   Chain
}

// Received acknowledges that the replica holds the whole transaction TID.
// Wire: ["received", [tid]].
type Received struct {
	_   struct{} `cbor:",toarray"`
	TID uint64
}

// Voted acknowledges a successful vote on transaction Seq. Replicas no
// longer send it (the primary's own vote decides, and received covers
// it); it stays decodable for replicas of earlier versions.
// Wire: ["voted", [seq]].
type Voted struct {
	_   struct{} `cbor:",toarray"`
	Seq uint64
}

// Applied acknowledges that transaction TID is committed durably.
// Wire: ["applied", [tid]].
type Applied struct {
	_   struct{} `cbor:",toarray"`
	TID uint64
}

// Failure reports that the replica failed to apply transaction Seq (TID, if
// known, else 0) and has quarantined itself.
// Wire: ["failure", [seq, tid, code, text]].
type Failure struct {
	_    struct{} `cbor:",toarray"`
	Seq  uint64
	TID  uint64
	Code FailureCode
	Text string
}

// Replay carries one whole committed transaction replayed to a replica
// that catches up: what a seq-0 begin, its stores and its finish carry, in
// one message, for transactions small enough that copying their data into
// one payload costs less than three messages. Records is the payload, the
// transaction's records one after another, each oid (8 bytes) ‖ length of
// data (8 bytes) ‖ data, integers big-endian (AppendReplayRecord,
// DecodeRecords). Wire: ["replay", [epoch, tid, chain, user, description,
// extension, records]].
type Replay struct {
	_           struct{} `cbor:",toarray"`
	Epoch       uint64
	TID         uint64
	Chain       Chain
	User        []byte
	Description []byte
	Extension   []byte
	Records     []byte
}

// ReplayRecord is one object revision of a Replay.
type ReplayRecord struct {
	OID  uint64
	Data []byte
}

// ReplayRecordHead is the size of a replay record's oid and length.
const ReplayRecordHead = 16

// AppendReplayRecord appends the record of oid with data to records, a
// Replay's Records.
func AppendReplayRecord(records []byte, oid uint64, data []byte) []byte {
	records = binary.BigEndian.AppendUint64(records, oid)
	records = binary.BigEndian.AppendUint64(records, uint64(len(data)))
	return append(records, data...)
}

// DecodeRecords returns the records of m, whole or not at all: an error
// (wrapping ErrMalformed) names the first record that is cut short and
// where. The records' Data are slices of m.Records.
func (m *Replay) DecodeRecords() ([]ReplayRecord, error) {
	return decodeRecords(m.Records, ReplayRecordHead, "replay", m.TID, func(head, data []byte) ReplayRecord {
		return ReplayRecord{OID: binary.BigEndian.Uint64(head), Data: data}
	})
}

// Txn carries one whole live transaction: what its begin, stores, vote and
// finish carry, in one message. The primary sends it in commit order, in
// place of those four kinds, for transactions whose data is small enough
// that copying it into one payload costs less than the messages it saves.
// Flags are TxnWantReceived or 0; a receiver ignores bits it does not
// know. Records is the payload, the transaction's records one after
// another, each oid (8 bytes) ‖ serial (8 bytes) ‖ length of data (8
// bytes) ‖ data, integers big-endian (AppendTxnRecord, DecodeRecords).
// Wire: ["txn", [epoch, seq, tid, chain, flags, user, description,
// extension, records]].
type Txn struct {
	_           struct{} `cbor:",toarray"`
	Epoch       uint64
	Seq         uint64
	TID         uint64
	Chain       Chain
	Flags       uint64
	User        []byte
	Description []byte
	Extension   []byte
	Records     []byte
}

// TxnWantReceived in Txn.Flags asks the replicas to acknowledge the
// transaction as received as soon as they hold it: its commit waits for
// that (sync mode received). Without it they acknowledge it only once
// applied, which also counts as received, and save a message.
const TxnWantReceived = 1

// WantsReceived reports whether m asks for a received acknowledgement.
func (m *Txn) WantsReceived() bool { return m.Flags&TxnWantReceived != 0 }

// TxnRecord is one store of a Txn.
type TxnRecord struct {
	OID    uint64
	Serial uint64
	Data   []byte
}

// TxnRecordHead is the size of a txn record's oid, serial and length.
const TxnRecordHead = 24

// AppendTxnRecord appends the store of oid based on serial with data to
// records, a Txn's Records.
func AppendTxnRecord(records []byte, oid, serial uint64, data []byte) []byte {
	records = binary.BigEndian.AppendUint64(records, oid)
	records = binary.BigEndian.AppendUint64(records, serial)
	records = binary.BigEndian.AppendUint64(records, uint64(len(data)))
	return append(records, data...)
}

// DecodeRecords returns the records of m, whole or not at all, as
// Replay.DecodeRecords does.
func (m *Txn) DecodeRecords() ([]TxnRecord, error) {
	return decodeRecords(m.Records, TxnRecordHead, "txn", m.TID, func(head, data []byte) TxnRecord {
		return TxnRecord{OID: binary.BigEndian.Uint64(head), Serial: binary.BigEndian.Uint64(head[8:]), Data: data}
	})
}

// decodeRecords splits b into records of a head of headLen bytes (the oid
// first, the data's length last) and their data, and makes each with
// record. An error (wrapping ErrMalformed) names the message by kind and
// tid, and the first record cut short; no records come with it.
func decodeRecords[R any](b []byte, headLen int, kind string, tid uint64, record func(head, data []byte) R) ([]R, error) {
	var recs []R
	for off := 0; off < len(b); {
		if len(b)-off < headLen {
			return nil, fmt.Errorf("%w: %s of %016x: record %d at byte %d: %d bytes left, a record head needs %d",
				ErrMalformed, kind, tid, len(recs), off, len(b)-off, headLen)
		}
		head := b[off : off+headLen]
		n := binary.BigEndian.Uint64(head[headLen-8:])
		off += headLen
		if n > uint64(len(b)-off) {
			return nil, fmt.Errorf("%w: %s of %016x: record %d (oid %016x) has %d bytes of data, %d left",
				ErrMalformed, kind, tid, len(recs), binary.BigEndian.Uint64(head), n, len(b)-off)
		}
		end := off + int(n)
		recs = append(recs, record(head, b[off:end:end]))
		off = end
	}
	return recs, nil
}

// Method implements Message.
func (*Begin) Method() string { return MethodBegin }

// Method implements Message.
func (*Store) Method() string { return MethodStore }

// Method implements Message.
func (*Vote) Method() string { return MethodVote }

// Method implements Message.
func (*Finish) Method() string { return MethodFinish }

// Method implements Message.
func (*Abort) Method() string { return MethodAbort }

// Method implements Message.
func (*Pack) Method() string { return MethodPack }

// Method implements Message.
func (*Heartbeat) Method() string { return MethodHeartbeat }

// Method implements Message.
func (*Live) Method() string { return MethodLive }

// Method implements Message.
func (*Replay) Method() string { return MethodReplay }

// Method implements Message.
func (*Txn) Method() string { return MethodTxn }

// Method implements Message.
func (*Hello) Method() string { return MethodHello }

// Method implements Message.
func (*Received) Method() string { return MethodReceived }

// Method implements Message.
func (*Voted) Method() string { return MethodVoted }

// Method implements Message.
func (*Applied) Method() string { return MethodApplied }

// Method implements Message.
func (*Failure) Method() string { return MethodFailure }

// PrimaryEpoch implements FromPrimary.
func (m *Begin) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Store) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Vote) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Finish) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Abort) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Pack) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Heartbeat) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Live) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Replay) PrimaryEpoch() uint64 { return m.Epoch }

// PrimaryEpoch implements FromPrimary.
func (m *Txn) PrimaryEpoch() uint64 { return m.Epoch }

// Payload implements Payloader: the object data.
func (m *Store) Payload() []byte { return m.Data }

// SetPayload implements Payloader.
func (m *Store) SetPayload(data []byte) { m.Data = data }

// Payload implements Payloader: the records.
func (m *Replay) Payload() []byte { return m.Records }

// SetPayload implements Payloader.
func (m *Replay) SetPayload(records []byte) { m.Records = records }

// Payload implements Payloader: the records.
func (m *Txn) Payload() []byte { return m.Records }

// SetPayload implements Payloader.
func (m *Txn) SetPayload(records []byte) { m.Records = records }

// builtinKinds returns a prototype of every built-in message kind. It builds
// a fresh slice each call so that no package-level value can be mutated.
func builtinKinds() []Message {
	return append([]Message{
		&Begin{}, &Store{}, &Vote{}, &Finish{}, &Abort{}, &Pack{}, &Heartbeat{}, &Live{}, &Replay{}, &Txn{},
		&Hello{}, &Received{}, &Voted{}, &Applied{}, &Failure{},
	}, clientKinds()...)
}
