package wire

// The client protocol: the messages between a storage client (package
// storage/remote) and a node's client port. Every request carries an ID
// chosen by the client, unique among its calls in flight on one connection;
// the server answers with messages carrying the same ID, in any order
// relative to other requests. ID 0 asks for no answer (CStore always, and
// a CAbort nobody waits for). A few answers are streams (History, Iterate):
// item messages with the request's ID, then one final message. A
// transaction is named by a number the client chooses per connection (Txn)
// and lives as long as the connection.
//
// Reads carry AtLeast, the oldest last TID the client accepts: a node whose
// last transaction is older waits for it for a bounded time, then answers
// with ClientBehind so the client reads elsewhere.
const (
	MethodCLoad       = "c.load"
	MethodCLoadBefore = "c.loadbefore"
	MethodCHistory    = "c.history"
	MethodCLast       = "c.last"
	MethodCChain      = "c.chain"
	MethodCIterate    = "c.iterate"
	MethodCNewOID     = "c.newoid"
	MethodCPack       = "c.pack"
	MethodCBegin      = "c.begin"
	MethodCStore      = "c.store"
	MethodCVote       = "c.vote"
	MethodCFinish     = "c.finish"
	MethodCFinishAt   = "c.finishat"
	MethodCVoteFinish = "c.votefinish"
	MethodCAbort      = "c.abort"
	MethodCRole       = "c.role"

	MethodCOK         = "c.ok"
	MethodCError      = "c.error"
	MethodCData       = "c.data"
	MethodCNum        = "c.num"
	MethodCCommit     = "c.commit"
	MethodCRevision   = "c.rev"
	MethodCTxn        = "c.txn"
	MethodCRecord     = "c.rec"
	MethodCRoleIs     = "c.roleis"
	MethodCInvalidate = "c.inval"
)

// ClientErrorCode classifies a CError. Codes are part of the wire contract:
// never renumber one, only add. A receiver treats a code it does not know as
// ClientErrOther.
type ClientErrorCode uint64

// Error codes of CError, one per error a storage client branches on.
const (
	ClientErrOther         ClientErrorCode = 0
	ClientErrConflict      ClientErrorCode = 1 // OID, Expected and Actual are set
	ClientErrNotFound      ClientErrorCode = 2
	ClientErrReadOnly      ClientErrorCode = 3
	ClientErrTIDOrder      ClientErrorCode = 4
	ClientErrChainMismatch ClientErrorCode = 5
	ClientErrTooLarge      ClientErrorCode = 6
	ClientErrTxnState      ClientErrorCode = 7
	ClientErrClosed        ClientErrorCode = 8
	// ClientErrBehind: the node's last TID stayed below the request's
	// AtLeast for as long as it waits; read from another node.
	ClientErrBehind ClientErrorCode = 9
	// ClientErrProtocol: the request was malformed or unexpected; the
	// server closes the connection after sending it.
	ClientErrProtocol ClientErrorCode = 10
)

// CLoad asks for the current revision of OID. Answer: CData (End 0) or
// CError. Wire: ["c.load", [id, oid, at_least]].
type CLoad struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	OID     uint64
	AtLeast uint64
}

// CLoadBefore asks for the revision of OID current just before Before.
// Answer: CData or CError. Wire: ["c.loadbefore", [id, oid, before, at_least]].
type CLoadBefore struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	OID     uint64
	Before  uint64
	AtLeast uint64
}

// CHistory asks for up to N revisions of OID (0: all). Answer: CRevision
// items, newest first, then COK; or CError.
// Wire: ["c.history", [id, oid, n, at_least]].
type CHistory struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	OID     uint64
	N       uint64
	AtLeast uint64
}

// CLast asks for the last committed TID; with AtLeast above it, the node
// waits for it first (wait_tid). Answer: CNum or CError.
// Wire: ["c.last", [id, at_least]].
type CLast struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	AtLeast uint64
}

// CChain asks for the chain value at TID. Answer: CCommit or CError.
// Wire: ["c.chain", [id, tid, at_least]].
type CChain struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	TID     uint64
	AtLeast uint64
}

// CIterate asks for one page of the committed transactions with From <= TID
// <= To (To 0: up to the last). Answer: for each transaction a CTxn then a
// CRecord per record, then CNum with the From of the next page (0: no
// more); or CError. Wire: ["c.iterate", [id, from, to, at_least]].
type CIterate struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	From    uint64
	To      uint64
	AtLeast uint64
}

// CNewOID asks the primary for a new OID. Answer: CNum or CError.
// Wire: ["c.newoid", [id]].
type CNewOID struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
}

// CPack packs the primary's history before Before. Answer: CNum with the
// primary's last TID once packed (replicas past it have applied the pack),
// or CError.
// Wire: ["c.pack", [id, before]].
type CPack struct {
	_      struct{} `cbor:",toarray"`
	ID     uint64
	Before uint64
}

// CBegin starts transaction Txn on the connection. Answer: COK or CError.
// Wire: ["c.begin", [id, txn, user, description, extension]].
type CBegin struct {
	_           struct{} `cbor:",toarray"`
	ID          uint64
	Txn         uint64
	User        []byte
	Description []byte
	Extension   []byte
}

// CStore stages one object revision in transaction Txn. It has no answer:
// the first failing store of a transaction is reported by its vote, so
// stores stream without a round trip each.
// Wire: ["c.store", [id, txn, oid, serial, data]].
type CStore struct {
	_      struct{} `cbor:",toarray"`
	ID     uint64
	Txn    uint64
	OID    uint64
	Serial uint64
	Data   []byte
}

// CVote votes transaction Txn. Answer: COK or CError.
// Wire: ["c.vote", [id, txn]].
type CVote struct {
	_   struct{} `cbor:",toarray"`
	ID  uint64
	Txn uint64
}

// CFinish commits voted transaction Txn. Answer: CCommit or CError.
// Wire: ["c.finish", [id, txn]].
type CFinish struct {
	_   struct{} `cbor:",toarray"`
	ID  uint64
	Txn uint64
}

// CVoteFinish votes transaction Txn and, if the vote succeeds, finishes
// it at once: one round trip instead of two, so the node's commit lock is
// never held while it waits for the client. Answer: CCommit, or CError (a
// failed vote, after which the transaction is aborted and forgotten, or a
// finish that failed, answered as for CFinish).
// Wire: ["c.votefinish", [id, txn]].
type CVoteFinish struct {
	_   struct{} `cbor:",toarray"`
	ID  uint64
	Txn uint64
}

// CFinishAt commits voted transaction Txn at TID, expecting chain value
// Chain (all zero: no expectation). Answer: CCommit or CError.
// Wire: ["c.finishat", [id, txn, tid, chain]].
type CFinishAt struct {
	_     struct{} `cbor:",toarray"`
	ID    uint64
	Txn   uint64
	TID   uint64
	Chain Chain
}

// CAbort aborts transaction Txn. Answer: COK or CError.
// Wire: ["c.abort", [id, txn]].
type CAbort struct {
	_   struct{} `cbor:",toarray"`
	ID  uint64
	Txn uint64
}

// CRole asks what the node is. Answer: CRoleIs.
// Wire: ["c.role", [id]].
type CRole struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
}

// COK answers a request that returns nothing, or ends a History stream.
// Wire: ["c.ok", [id]].
type COK struct {
	_  struct{} `cbor:",toarray"`
	ID uint64
}

// CError answers a request that failed. Code says which error; OID,
// Expected and Actual describe a conflict; for any other code a non-zero
// Actual answering a finish is the TID the transaction committed at
// before something failed (a primary's replicas did not acknowledge in
// time). Text is the server's message. Wire: ["c.error", [id, code, oid, expected, actual, text]].
type CError struct {
	_        struct{} `cbor:",toarray"`
	ID       uint64
	Code     ClientErrorCode
	OID      uint64
	Expected uint64
	Actual   uint64
	Text     string
}

// CData answers CLoad and CLoadBefore: the revision's TID (Serial), the TID
// that replaced it (End, 0 if current) and its data.
// Wire: ["c.data", [id, serial, end, data]].
type CData struct {
	_      struct{} `cbor:",toarray"`
	ID     uint64
	Serial uint64
	End    uint64
	Data   []byte
}

// CNum answers with one number: a TID (CLast, CPack), an OID (CNewOID) or
// the next page's From (CIterate). Wire: ["c.num", [id, value]].
type CNum struct {
	_     struct{} `cbor:",toarray"`
	ID    uint64
	Value uint64
}

// CCommit answers CFinish, CFinishAt, CVoteFinish and CChain with a TID and its chain
// value. Wire: ["c.commit", [id, tid, chain]].
type CCommit struct {
	_     struct{} `cbor:",toarray"`
	ID    uint64
	TID   uint64
	Chain Chain
}

// CRevision is one item of a History answer.
// Wire: ["c.rev", [id, tid, data]].
type CRevision struct {
	_    struct{} `cbor:",toarray"`
	ID   uint64
	TID  uint64
	Data []byte
}

// CTxn starts one transaction of an Iterate page; its records follow.
// Wire: ["c.txn", [id, tid, chain, user, description, extension]].
type CTxn struct {
	_           struct{} `cbor:",toarray"`
	ID          uint64
	TID         uint64
	Chain       Chain
	User        []byte
	Description []byte
	Extension   []byte
}

// CRecord is one record of the transaction of the preceding CTxn.
// Wire: ["c.rec", [id, oid, data]].
type CRecord struct {
	_    struct{} `cbor:",toarray"`
	ID   uint64
	OID  uint64
	Data []byte
}

// CRoleIs answers CRole: "primary" or "replica", and the node's last TID.
// Wire: ["c.roleis", [id, role, last_tid]].
type CRoleIs struct {
	_       struct{} `cbor:",toarray"`
	ID      uint64
	Role    string
	LastTID uint64
}

// CInvalidate is pushed by a node to every connected client after each
// commit: its TID and the OIDs it changed, each 8 bytes big-endian, in
// ascending order (ZEO's invalidateTransaction). It answers no request.
// Wire: ["c.inval", [tid, oids]].
type CInvalidate struct {
	_    struct{} `cbor:",toarray"`
	TID  uint64
	OIDs []byte
}

// Method implements Message.
func (*CLoad) Method() string { return MethodCLoad }

// Method implements Message.
func (*CLoadBefore) Method() string { return MethodCLoadBefore }

// Method implements Message.
func (*CHistory) Method() string { return MethodCHistory }

// Method implements Message.
func (*CLast) Method() string { return MethodCLast }

// Method implements Message.
func (*CChain) Method() string { return MethodCChain }

// Method implements Message.
func (*CIterate) Method() string { return MethodCIterate }

// Method implements Message.
func (*CNewOID) Method() string { return MethodCNewOID }

// Method implements Message.
func (*CPack) Method() string { return MethodCPack }

// Method implements Message.
func (*CBegin) Method() string { return MethodCBegin }

// Method implements Message.
func (*CStore) Method() string { return MethodCStore }

// Method implements Message.
func (*CVote) Method() string { return MethodCVote }

// Method implements Message.
func (*CFinish) Method() string { return MethodCFinish }

// Method implements Message.
func (*CFinishAt) Method() string { return MethodCFinishAt }

// Method implements Message.
func (*CVoteFinish) Method() string { return MethodCVoteFinish }

// Method implements Message.
func (*CAbort) Method() string { return MethodCAbort }

// Method implements Message.
func (*CRole) Method() string { return MethodCRole }

// Method implements Message.
func (*COK) Method() string { return MethodCOK }

// Method implements Message.
func (*CError) Method() string { return MethodCError }

// Method implements Message.
func (*CData) Method() string { return MethodCData }

// Method implements Message.
func (*CNum) Method() string { return MethodCNum }

// Method implements Message.
func (*CCommit) Method() string { return MethodCCommit }

// Method implements Message.
func (*CRevision) Method() string { return MethodCRevision }

// Method implements Message.
func (*CTxn) Method() string { return MethodCTxn }

// Method implements Message.
func (*CRecord) Method() string { return MethodCRecord }

// Method implements Message.
func (*CRoleIs) Method() string { return MethodCRoleIs }

// Method implements Message.
func (*CInvalidate) Method() string { return MethodCInvalidate }

// Payload implements Payloader: the object data.
func (m *CStore) Payload() []byte { return m.Data }

// SetPayload implements Payloader.
func (m *CStore) SetPayload(data []byte) { m.Data = data }

// Payload implements Payloader: the object data.
func (m *CData) Payload() []byte { return m.Data }

// SetPayload implements Payloader.
func (m *CData) SetPayload(data []byte) { m.Data = data }

// Payload implements Payloader: the object data.
func (m *CRevision) Payload() []byte { return m.Data }

// SetPayload implements Payloader.
func (m *CRevision) SetPayload(data []byte) { m.Data = data }

// Payload implements Payloader: the object data.
func (m *CRecord) Payload() []byte { return m.Data }

// SetPayload implements Payloader.
func (m *CRecord) SetPayload(data []byte) { m.Data = data }

// Payload implements Payloader: the packed OIDs, which may be many.
func (m *CInvalidate) Payload() []byte { return m.OIDs }

// SetPayload implements Payloader.
func (m *CInvalidate) SetPayload(data []byte) { m.OIDs = data }

// clientKinds returns a prototype of every client protocol message kind.
func clientKinds() []Message {
	return []Message{
		&CLoad{}, &CLoadBefore{}, &CHistory{}, &CLast{}, &CChain{}, &CIterate{}, &CNewOID{}, &CPack{},
		&CBegin{}, &CStore{}, &CVote{}, &CFinish{}, &CFinishAt{}, &CVoteFinish{}, &CAbort{}, &CRole{},
		&COK{}, &CError{}, &CData{}, &CNum{}, &CCommit{}, &CRevision{}, &CTxn{}, &CRecord{}, &CRoleIs{}, &CInvalidate{},
	}
}
