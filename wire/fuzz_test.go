package wire_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/repld/repld/wire"
)

// configForFuzz has small limits, so that the fuzzer reaches them.
func configForFuzz() wire.Config {
	return wire.Config{MaxMessageLen: 4096, MaxDataLen: 2048, MaxByteStringLen: 256, MaxTextLen: 64}
}

// FuzzUnmarshal checks that no input panics the decoder, that every error
// wraps a sentinel, and that every message that decodes is canonical: it
// re-encodes, whole and as head plus payload, to the input's bytes.
func FuzzUnmarshal(f *testing.F) {
	c := newCodec(f, configForFuzz())
	for _, s := range samples() {
		b, err := c.Marshal(s.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range strictCases() {
		f.Add(mustHex(f, tc.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := c.Unmarshal(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Unmarshal returned %+v with error %v", m, err)
			}
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrUnknownMethod) && !errors.Is(err, wire.ErrTooLarge) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		cfg := c.Config()
		if len(b) > cfg.MaxMessageLen {
			t.Fatalf("decoded a message of %d bytes, above MaxMessageLen", len(b))
		}
		if p, ok := m.(wire.Payloader); ok && len(p.Payload()) > cfg.MaxDataLen {
			t.Fatalf("decoded a payload of %d bytes, above MaxDataLen", len(p.Payload()))
		}
		enc, err := c.Marshal(m)
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("not canonical: input %x re-encodes to %x", b, enc)
		}
		head, payload, err := c.AppendHead(nil, m)
		if err != nil || !bytes.Equal(append(head, payload...), b) {
			t.Fatalf("head+payload = %x, %v; want %x", append(head, payload...), err, b)
		}
		if s, ok := m.(*wire.Store); ok && len(s.Data) > 0 && &s.Data[0] != &b[len(b)-len(s.Data)] {
			t.Fatal("Store.Data does not alias the input")
		}
	})
}

// FuzzReplayRecords: DecodeRecords takes any bytes without panicking and
// returns the records whole or an ErrMalformed error and nothing; what it
// accepts re-encodes to the same bytes.
func FuzzReplayRecords(f *testing.F) {
	f.Add([]byte{})
	f.Add(wire.AppendReplayRecord(wire.AppendReplayRecord(nil, 0x10, []byte("object state")), 0x11, nil))
	f.Add(wire.AppendReplayRecord(nil, 1, []byte("x"))[:16])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := (&wire.Replay{TID: 1, Records: b}).DecodeRecords()
		checkRecords(t, b, recs, err, func(again []byte, r wire.ReplayRecord) []byte {
			return wire.AppendReplayRecord(again, r.OID, r.Data)
		})
	})
}

// FuzzTxnRecords: as FuzzReplayRecords, for a Txn's records.
func FuzzTxnRecords(f *testing.F) {
	f.Add([]byte{})
	f.Add(wire.AppendTxnRecord(wire.AppendTxnRecord(nil, 0x10, 0x03ea1b2c3d4e5f60, []byte("object state")), 0x11, 0, nil))
	f.Add(wire.AppendTxnRecord(nil, 1, 2, []byte("x"))[:24])
	f.Add(append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := (&wire.Txn{TID: 1, Records: b}).DecodeRecords()
		checkRecords(t, b, recs, err, func(again []byte, r wire.TxnRecord) []byte {
			return wire.AppendTxnRecord(again, r.OID, r.Serial, r.Data)
		})
	})
}

// checkRecords checks what DecodeRecords returned for b: no records and
// ErrMalformed, or records that appendRecord re-encodes to b.
func checkRecords[R any](t *testing.T, b []byte, recs []R, err error, appendRecord func([]byte, R) []byte) {
	t.Helper()
	if err != nil {
		if recs != nil || !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("DecodeRecords = %v, %v; want no records and ErrMalformed", recs, err)
		}
		return
	}
	var again []byte
	for _, r := range recs {
		again = appendRecord(again, r)
	}
	if !bytes.Equal(again, b) {
		t.Fatalf("records %x re-encode to %x", b, again)
	}
}
