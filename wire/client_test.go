package wire_test

import (
	"errors"
	"testing"

	"github.com/repld/repld/wire"
)

// clientSamples are the golden samples of the client protocol's kinds.
func clientSamples() []sample {
	return []sample{
		{"c.load", "Client load of object 0x10; the answering node must have committed at least 03ea1b2c3d4e5f60.",
			&wire.CLoad{ID: 1, OID: 0x10, AtLeast: tid1}},
		{"c.loadbefore", "Client load of the revision of object 0x10 current before 03ea1b2c3d4e5f61.",
			&wire.CLoadBefore{ID: 2, OID: 0x10, Before: tid2}},
		{"c.history", "Client history of object 0x10, at most 5 revisions.", &wire.CHistory{ID: 3, OID: 0x10, N: 5}},
		{"c.last", "Client asks for the last TID, waiting until it is at least 03ea1b2c3d4e5f61.", &wire.CLast{ID: 4, AtLeast: tid2}},
		{"c.chain", "Client asks for the chain value at 03ea1b2c3d4e5f61.", &wire.CChain{ID: 5, TID: tid2}},
		{"c.iterate", "Client asks for a page of transactions from 03ea1b2c3d4e5f60 to the end.", &wire.CIterate{ID: 6, From: tid1}},
		{"c.newoid", "Client asks the primary for a new OID.", &wire.CNewOID{ID: 7}},
		{"c.pack", "Client packs history before 03ea1b2c3d4e5f61.", &wire.CPack{ID: 8, Before: tid2}},
		{"c.begin", "Client begins its transaction 1 with ZODB metadata.",
			&wire.CBegin{ID: 9, Txn: 1, User: []byte("alice"), Description: []byte("add a page"), Extension: []byte{0x80, 0x04, 0x7d, 0x94, 0x2e}}},
		{"c.store", "Client stores object 0x10 in transaction 1, based on revision 03ea1b2c3d4e5f60; data is the payload.",
			&wire.CStore{ID: 10, Txn: 1, OID: 0x10, Serial: tid1, Data: []byte("object state")}},
		{"c.vote", "Client votes transaction 1.", &wire.CVote{ID: 11, Txn: 1}},
		{"c.finish", "Client finishes transaction 1.", &wire.CFinish{ID: 12, Txn: 1}},
		{"c.finishat", "Client finishes transaction 1 at 03ea1b2c3d4e5f61, expecting this chain value.",
			&wire.CFinishAt{ID: 13, Txn: 1, TID: tid2, Chain: testChain()}},
		{"c.votefinish", "Client votes transaction 1 and, if the vote succeeds, finishes it.", &wire.CVoteFinish{ID: 16, Txn: 1}},
		{"c.abort", "Client aborts transaction 2.", &wire.CAbort{ID: 14, Txn: 2}},
		{"c.role", "Client asks the node's role.", &wire.CRole{ID: 15}},
		{"c.ok", "Request 9 succeeded.", &wire.COK{ID: 9}},
		{"c.error", "Request 11 failed: a conflict on object 0x10 stored with serial 03ea1b2c3d4e5f60, current 03ea1b2c3d4e5f61.",
			&wire.CError{ID: 11, Code: wire.ClientErrConflict, OID: 0x10, Expected: tid1, Actual: tid2, Text: "conflict"}},
		{"c.data", "Object data answering request 1: the revision of 03ea1b2c3d4e5f60, still current.",
			&wire.CData{ID: 1, Serial: tid1, Data: []byte("object state")}},
		{"c.num", "A number answering request 4: the last TID.", &wire.CNum{ID: 4, Value: tid2}},
		{"c.commit", "Transaction of request 12 committed at 03ea1b2c3d4e5f61 with this chain value.",
			&wire.CCommit{ID: 12, TID: tid2, Chain: testChain()}},
		{"c.rev", "One revision of a history answer.", &wire.CRevision{ID: 3, TID: tid1, Data: []byte("object state")}},
		{"c.txn", "One transaction of an iterator page; its records follow.",
			&wire.CTxn{ID: 6, TID: tid2, Chain: testChain(), User: []byte("alice"), Description: []byte("add a page"), Extension: []byte{0x80}}},
		{"c.rec", "One record of the preceding transaction.", &wire.CRecord{ID: 6, OID: 0x10, Data: []byte("object state")}},
		{"c.roleis", "The node is the primary; its last TID is 03ea1b2c3d4e5f61.", &wire.CRoleIs{ID: 15, Role: "primary", LastTID: tid2}},
		{"c.inval", "Transaction 03ea1b2c3d4e5f61 changed objects 0x10 and 0x11.",
			&wire.CInvalidate{TID: tid2, OIDs: []byte{0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x11}}},
	}
}

func TestClientPayloadsAlias(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, s := range clientSamples() {
		p, ok := s.msg.(wire.Payloader)
		if !ok {
			continue
		}
		b, err := c.Marshal(s.msg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		m, err := c.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := m.(wire.Payloader).Payload()
		if len(got) != len(p.Payload()) || &got[0] != &b[len(b)-len(got)] {
			t.Fatalf("%s: payload does not alias the input", s.name)
		}
	}
}

// TestVoteFinishIsStrict checks that the one-step commit request decodes
// only in its exact shape, and that it cannot be mistaken for the CCommit
// answer, whose method name is close.
func TestVoteFinishIsStrict(t *testing.T) {
	c := newCodec(t, wire.Config{})
	const method = "6c 632e766f746566696e697368" // "c.votefinish"
	for _, tc := range voteFinishStrictCases() {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Unmarshal(mustHex(t, tc.hex))
			if !errors.Is(err, tc.want) || m != nil {
				t.Fatalf("Unmarshal = %+v, %v; want %v", m, err, tc.want)
			}
		})
	}
	m, err := c.Unmarshal(mustHex(t, "82"+method+"82 10 01"))
	if vf, ok := m.(*wire.CVoteFinish); err != nil || !ok || vf.ID != 16 || vf.Txn != 1 {
		t.Fatalf("Unmarshal of a valid c.votefinish = %+v, %v", m, err)
	}
}

// voteFinishStrictCases are encodings of c.votefinish that a decoder
// refuses; they are also seeds of the decoder's fuzz corpus.
func voteFinishStrictCases() []strictCase {
	const method = "6c 632e766f746566696e697368" // "c.votefinish"
	return []strictCase{
		{"votefinish-args-too-many", "82" + method + "83 10 01 01", wire.ErrMalformed},
		{"votefinish-args-too-few", "82" + method + "81 10", wire.ErrMalformed},
		{"votefinish-args-not-array", "82" + method + "10", wire.ErrMalformed},
		{"votefinish-bytes-for-txn", "82" + method + "82 10 41 01", wire.ErrMalformed},
		{"votefinish-text-for-id", "82" + method + "82 61 31 01", wire.ErrMalformed},
		{"votefinish-non-shortest-txn", "82" + method + "82 10 18 01", wire.ErrMalformed},
		{"votefinish-trailing-byte", "82" + method + "82 10 01 00", wire.ErrMalformed},
		// c.commit is the answer [id, tid, chain], not a request [id, txn].
		{"commit-as-request", "82 68 632e636f6d6d6974 82 10 01", wire.ErrMalformed},
	}
}
