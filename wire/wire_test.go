package wire_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/repld/repld/wire"
)

// sample is one message of every kind, used for round trips and golden
// vectors.
type sample struct {
	name string // golden file name, the method for built-in kinds
	desc string // what the message means, for the golden file
	msg  wire.Message
}

const (
	tid1 = 0x03ea1b2c3d4e5f60
	tid2 = 0x03ea1b2c3d4e5f61
)

func testChain() wire.Chain { return wire.Chain(sha256.Sum256([]byte("repld chain"))) }

func samples() []sample {
	return append([]sample{
		{"begin", "Begin opens transaction seq 7 of epoch 3 with ZODB metadata (extension is a pickled empty dict).",
			&wire.Begin{Epoch: 3, Seq: 7, User: []byte("alice"), Description: []byte("add a page"), Extension: []byte{0x80, 0x04, 0x7d, 0x94, 0x2e}}},
		{"store", "Store carries object 0x10 of transaction 7, based on revision 03ea1b2c3d4e5f60; data is the payload, last.",
			&wire.Store{Epoch: 3, Seq: 7, OID: 0x10, Serial: tid1, Data: []byte("object state")}},
		{"vote", "Vote asks the replicas to validate transaction 7 of epoch 3.", &wire.Vote{Epoch: 3, Seq: 7}},
		{"finish", "Finish commits transaction 7 at 03ea1b2c3d4e5f61 with the primary's chain value after it.",
			&wire.Finish{Epoch: 3, Seq: 7, TID: tid2, Chain: testChain()}},
		{"abort", "Abort drops transaction 8 of epoch 3.", &wire.Abort{Epoch: 3, Seq: 8}},
		{"pack", "Pack removes revisions superseded before 03ea1b2c3d4e5f61.", &wire.Pack{Epoch: 3, Before: tid2}},
		{"heartbeat", "Heartbeat from the primary of epoch 3, whose last transaction is 03ea1b2c3d4e5f61.", &wire.Heartbeat{Epoch: 3, LastTID: tid2}},
		{"live", "Live: the replica's catch-up ended at 03ea1b2c3d4e5f61; transactions from seq 8 reach it on the live stream.",
			&wire.Live{Epoch: 3, NextSeq: 8, TID: tid2}},
		{"replay", "Replay: transaction 03ea1b2c3d4e5f61, replayed whole to a catching-up replica, with records for objects 0x10 and 0x11 (empty).",
			&wire.Replay{Epoch: 3, TID: tid2, Chain: testChain(), User: []byte("alice"), Description: []byte("add a page"),
				Extension: []byte{0x80, 0x04, 0x7d, 0x94, 0x2e}, Records: wire.AppendReplayRecord(wire.AppendReplayRecord(nil, 0x10, []byte("object state")), 0x11, nil)}},
		{"txn", "Txn: transaction seq 7 of epoch 3, whole, committed at 03ea1b2c3d4e5f61, to be acknowledged as received: a store of object 0x10 based on revision 03ea1b2c3d4e5f60 and a new object 0x11 (empty).",
			&wire.Txn{Epoch: 3, Seq: 7, TID: tid2, Chain: testChain(), Flags: wire.TxnWantReceived, User: []byte("alice"), Description: []byte("add a page"),
				Extension: []byte{0x80, 0x04, 0x7d, 0x94, 0x2e}, Records: wire.AppendTxnRecord(wire.AppendTxnRecord(nil, 0x10, tid1, []byte("object state")), 0x11, 0, nil)}},
		{"hello", "Hello from replica-1, which has seen epoch 3 and committed up to 03ea1b2c3d4e5f61 with this chain value.",
			&wire.Hello{Node: "replica-1", Epoch: 3, LastTID: tid2, Chain: testChain()}},
		{"received", "Received: the replica holds all of transaction 03ea1b2c3d4e5f61.", &wire.Received{TID: tid2}},
		{"voted", "Voted: transaction 7 passed the replica's vote.", &wire.Voted{Seq: 7}},
		{"applied", "Applied: transaction 03ea1b2c3d4e5f61 is durable on the replica.", &wire.Applied{TID: tid2}},
		{"failure", "Failure: applying transaction 7 (03ea1b2c3d4e5f61) gave a different chain value; the replica quarantined itself.",
			&wire.Failure{Seq: 7, TID: tid2, Code: wire.FailureChainMismatch, Text: "chain mismatch at 03ea1b2c3d4e5f61"}},
	}, clientSamples()...)
}

func newCodec(t testing.TB, cfg wire.Config) *wire.Codec {
	t.Helper()
	c, err := wire.NewCodec(cfg)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

// reference encodes m with the cbor library alone, the encoding every
// codec method must reproduce byte for byte.
func reference(t testing.TB, m wire.Message) []byte {
	t.Helper()
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	em, err := opts.EncMode()
	if err != nil {
		t.Fatal(err)
	}
	b, err := em.Marshal([]any{m.Method(), m})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEveryKindHasASample(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range samples() {
		seen[s.msg.Method()] = true
	}
	for _, m := range []string{wire.MethodBegin, wire.MethodStore, wire.MethodVote, wire.MethodFinish, wire.MethodAbort,
		wire.MethodPack, wire.MethodHeartbeat, wire.MethodLive, wire.MethodReplay, wire.MethodTxn, wire.MethodHello, wire.MethodReceived, wire.MethodVoted,
		wire.MethodApplied, wire.MethodFailure} {
		if !seen[m] {
			t.Errorf("no sample of %q", m)
		}
	}
	if want := 15 + len(clientSamples()); len(seen) != want {
		t.Errorf("samples cover %d methods, want %d", len(seen), want)
	}
}

func TestRoundTrip(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			b, err := c.Marshal(s.msg)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if want := reference(t, s.msg); !bytes.Equal(b, want) {
				t.Fatalf("Marshal = %x, library reference = %x", b, want)
			}
			got, err := c.Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, s.msg) {
				t.Fatalf("Unmarshal = %+v, want %+v", got, s.msg)
			}
			bufs, err := c.MarshalBuffers(s.msg)
			if err != nil {
				t.Fatalf("MarshalBuffers: %v", err)
			}
			if joined := bytes.Join(bufs, nil); !bytes.Equal(joined, b) {
				t.Fatalf("MarshalBuffers joined = %x, Marshal = %x", joined, b)
			}
		})
	}
}

func TestZeroValuesRoundTrip(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, s := range samples() {
		zero := reflect.New(reflect.TypeOf(s.msg).Elem()).Interface().(wire.Message)
		b, err := c.Marshal(zero)
		if err != nil {
			t.Fatalf("%s: Marshal: %v", s.name, err)
		}
		if want := reference(t, zero); !bytes.Equal(b, want) {
			t.Fatalf("%s: Marshal = %x, library reference = %x", s.name, b, want)
		}
		got, err := c.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: Unmarshal: %v", s.name, err)
		}
		again, err := c.Marshal(got)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s: re-encoding = %x, %v; want %x", s.name, again, err, b)
		}
	}
}

func TestEpochIsFirstArgumentOfPrimaryMessages(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, s := range samples() {
		fp, ok := s.msg.(wire.FromPrimary)
		primary := map[string]bool{"begin": true, "store": true, "vote": true, "finish": true, "abort": true, "pack": true, "heartbeat": true, "live": true, "replay": true, "txn": true}[s.name]
		if ok != primary {
			t.Errorf("%s: implements FromPrimary = %v, want %v", s.name, ok, primary)
			continue
		}
		if !ok {
			continue
		}
		b, err := c.Marshal(s.msg)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			_      struct{} `cbor:",toarray"`
			Method string
			Args   []cbor.RawMessage
		}
		if err := cbor.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		var first uint64
		if err := cbor.Unmarshal(env.Args[0], &first); err != nil || first != fp.PrimaryEpoch() || first != 3 {
			t.Errorf("%s: first argument %d (%v), PrimaryEpoch %d, want 3", s.name, first, err, fp.PrimaryEpoch())
		}
	}
}

// TestPayloadBuffers checks, for payload sizes around every head size, that
// the head plus the caller's own payload slice is the deterministic encoding.
func TestPayloadBuffers(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, n := range []int{0, 1, 23, 24, 255, 256, 65535, 65536, 1 << 20} {
		data := bytes.Repeat([]byte{0xa5}, n)
		m := &wire.Store{Epoch: 1 << 40, Seq: 300, OID: 70000, Serial: tid1, Data: data}
		want := reference(t, m)
		head, payload, err := c.AppendHead([]byte("prefix"), m)
		if err != nil {
			t.Fatalf("n=%d: AppendHead: %v", n, err)
		}
		if string(head[:6]) != "prefix" {
			t.Fatalf("n=%d: AppendHead lost dst", n)
		}
		if n > 0 && &payload[0] != &data[0] {
			t.Fatalf("n=%d: AppendHead copied the payload", n)
		}
		if got := append(bytes.Clone(head[6:]), payload...); !bytes.Equal(got, want) {
			t.Fatalf("n=%d: head+payload differs from the library encoding", n)
		}
		if len(head)-6 > 64 {
			t.Fatalf("n=%d: head is %d bytes", n, len(head)-6)
		}
		bufs, err := c.MarshalBuffers(m)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && (len(bufs) != 2 || &bufs[1][0] != &data[0]) {
			t.Fatalf("n=%d: MarshalBuffers does not hand out the payload itself", n)
		}
		b, err := c.Marshal(m)
		if err != nil || !bytes.Equal(b, want) {
			t.Fatalf("n=%d: Marshal differs from the library encoding (%v)", n, err)
		}
	}
}

func TestUnmarshalAliasesPayload(t *testing.T) {
	c := newCodec(t, wire.Config{})
	data := bytes.Repeat([]byte("x"), 1<<20)
	b, err := c.Marshal(&wire.Store{Epoch: 1, Seq: 2, OID: 3, Serial: 4, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "spare capacity"...)[:len(b)]
	m, err := c.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	s := m.(*wire.Store)
	if &s.Data[0] != &b[len(b)-len(data)] {
		t.Fatal("Data does not alias the input")
	}
	if cap(s.Data) != len(data) {
		t.Fatalf("cap(Data) = %d, want %d so appends cannot overwrite the input", cap(s.Data), len(data))
	}
	if !bytes.Equal(s.Data, data) {
		t.Fatal("Data differs")
	}
}

// TestDecodeStoreAllocatesLittle checks that decoding a 1 MiB store allocates
// nothing near the size of its data.
func TestDecodeStoreAllocatesLittle(t *testing.T) {
	c := newCodec(t, wire.Config{})
	b, err := c.Marshal(&wire.Store{Epoch: 1, Seq: 2, OID: 3, Serial: 4, Data: make([]byte, 1<<20)})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		if _, err := c.Unmarshal(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.MarshalBuffers(&wire.Store{Data: b}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 64<<10 {
		t.Fatalf("decode+encode of a 1 MiB store allocates %d bytes", per)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// Pieces of hand-made messages.
const (
	vote   = "64 766f7465"   // "vote"
	store  = "65 73746f7265" // "store"
	finish = "66 66696e697368"
	hello  = "65 68656c6c6f"
	begin  = "65 626567696e"
	c32    = "5820 0001020304050607 08090a0b0c0d0e0f 1011121314151617 18191a1b1c1d1e1f"
)

// strictCase is an input every decoder must refuse.
type strictCase struct {
	name string
	hex  string
	want error
}

func strictCases() []strictCase {
	return []strictCase{
		{"empty", "", wire.ErrMalformed},
		{"not-an-array", "64 766f7465", wire.ErrMalformed},
		{"envelope-of-three", "83" + vote + "82 03 07 00", wire.ErrMalformed},
		{"envelope-of-one", "81" + vote, wire.ErrMalformed},
		{"envelope-map", "a1" + vote + "82 03 07", wire.ErrMalformed},
		{"method-bytes", "82 44 766f7465 82 03 07", wire.ErrMalformed},
		{"method-uint", "82 01 82 03 07", wire.ErrMalformed},
		{"method-invalid-utf8", "82 62 c328 82 03 07", wire.ErrMalformed},
		{"unknown-method", "82 64 766f7466 82 03 07", wire.ErrUnknownMethod},
		{"method-case", "82 64 566f7465 82 03 07", wire.ErrUnknownMethod},
		{"args-too-many", "82" + vote + "83 03 07 07", wire.ErrMalformed},
		{"args-too-few", "82" + vote + "81 03", wire.ErrMalformed},
		{"args-not-array", "82" + vote + "03", wire.ErrMalformed},
		{"arg-bytes-for-uint", "82" + vote + "82 03 41 07", wire.ErrMalformed},
		{"arg-text-for-bytes", "82" + begin + "85 03 07 60 40 40", wire.ErrMalformed},
		{"arg-bytes-for-text", "82" + hello + "84 41 61 03 07" + c32, wire.ErrMalformed},
		{"arg-empty-array-for-bytes", "82" + begin + "85 03 07 80 80 40", wire.ErrMalformed},
		{"arg-array-for-bytes", "82" + begin + "85 03 07 82 01 02 40 40", wire.ErrMalformed},
		{"arg-array-for-chain", "82" + finish + "84 03 07 01 80", wire.ErrMalformed},
		{"arg-array-for-uint", "82" + vote + "82 03 81 07", wire.ErrMalformed},
		{"arg-negative", "82" + vote + "82 03 20", wire.ErrMalformed},
		{"arg-null", "82" + vote + "82 03 f6", wire.ErrMalformed},
		{"arg-false", "82" + vote + "82 03 f4", wire.ErrMalformed},
		{"arg-float", "82" + vote + "82 03 f93c00", wire.ErrMalformed},
		{"arg-undefined-bytes", "82" + begin + "85 03 07 f7 40 40", wire.ErrMalformed},
		{"indefinite-envelope", "9f" + vote + "82 03 07 ff", wire.ErrMalformed},
		{"indefinite-args", "82" + vote + "9f 03 07 ff", wire.ErrMalformed},
		{"indefinite-text", "82 7f 64 766f7465 ff 82 03 07", wire.ErrMalformed},
		{"indefinite-data", "82" + store + "85 01 02 03 04 5f 41 00 ff", wire.ErrMalformed},
		{"tag-on-message", "d818 82" + vote + "82 03 07", wire.ErrMalformed},
		{"tag-on-arg", "82" + vote + "82 c1 03 07", wire.ErrMalformed},
		{"bignum", "82" + vote + "82 c2 41 03 07", wire.ErrMalformed},
		{"map-arg-duplicate-keys", "82" + vote + "82 03 a2 01 01 01 02", wire.ErrMalformed},
		{"non-shortest-uint", "82" + vote + "82 18 03 07", wire.ErrMalformed},
		{"non-shortest-uint64", "82" + vote + "82 1b 00000000ffffffff 07", wire.ErrMalformed},
		{"non-shortest-array", "82" + vote + "98 02 03 07", wire.ErrMalformed},
		{"non-shortest-envelope", "98 02" + vote + "82 03 07", wire.ErrMalformed},
		{"non-shortest-method", "82 78 04 766f7465 82 03 07", wire.ErrMalformed},
		{"non-shortest-data", "82" + store + "85 01 02 03 04 58 01 00", wire.ErrMalformed},
		{"reserved-ai", "82" + vote + "82 1c 07", wire.ErrMalformed},
		{"trailing-byte", "82" + vote + "82 03 07 00", wire.ErrMalformed},
		{"trailing-message", "82" + vote + "82 03 07 82" + vote + "82 03 07", wire.ErrMalformed},
		{"truncated-args", "82" + vote + "82 03", wire.ErrMalformed},
		{"truncated-head", "82" + vote + "82 03 19 01", wire.ErrMalformed},
		{"truncated-data", "82" + store + "85 01 02 03 04 45 0102", wire.ErrMalformed},
		{"huge-data-length", "82" + store + "85 01 02 03 04 5b ffffffffffffffff", wire.ErrMalformed},
		{"huge-array", "82" + vote + "9a ffffffff", wire.ErrTooLarge},
		{"chain-31", "82" + finish + "84 03 07 1b 03ea1b2c3d4e5f61 581f 0001020304050607 08090a0b0c0d0e0f 1011121314151617 18191a1b1c1d1e", wire.ErrMalformed},
		{"chain-33", "82" + finish + "84 03 07 1b 03ea1b2c3d4e5f61 5821 0001020304050607 08090a0b0c0d0e0f 1011121314151617 18191a1b1c1d1e1f 20", wire.ErrMalformed},
		{"chain-empty", "82" + finish + "84 03 07 1b 03ea1b2c3d4e5f61 40", wire.ErrMalformed},
		{"chain-text", "82" + hello + "84 61 61 03 07 7820 6161616161616161 6161616161616161 6161616161616161 6161616161616161", wire.ErrMalformed},
		{"node-invalid-utf8", "82" + hello + "84 61 ff 03 07" + c32, wire.ErrMalformed},
		{"store-data-not-last-bytes", "82" + store + "85 01 02 03 04 05", wire.ErrMalformed},
		{"store-data-nested", "82" + store + "85 01 02 03 04 81 41 00", wire.ErrMalformed},
		{"store-data-first", "82" + store + "85 41 00 01 02 03 04", wire.ErrMalformed},
		{"store-too-many", "82" + store + "86 01 02 03 04 05 41 00", wire.ErrMalformed},
		{"store-args-bytes", "82" + store + "41 00", wire.ErrMalformed},
		{"deep-nesting", "82" + vote + "82 03 81 81 81 81 81 81 81 81 00", wire.ErrTooLarge},
		{"too-many-elements", "82" + vote + "91" + strings.Repeat("00", 17), wire.ErrTooLarge},
	}
}

func TestUnmarshalStrict(t *testing.T) {
	c := newCodec(t, wire.Config{})
	for _, tc := range strictCases() {
		t.Run(tc.name, func(t *testing.T) {
			m, err := c.Unmarshal(mustHex(t, tc.hex))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Unmarshal = %+v, %v; want %v", m, err, tc.want)
			}
			if m != nil {
				t.Fatalf("Unmarshal returned %+v with an error", m)
			}
		})
	}
}

// TestUnmarshalLimits checks each Config limit on a message just within it
// and one just beyond it.
func TestUnmarshalLimits(t *testing.T) {
	cfg := wire.Config{MaxMessageLen: 200, MaxDataLen: 100, MaxByteStringLen: 40, MaxTextLen: 20}
	c := newCodec(t, cfg)
	big := newCodec(t, wire.Config{})
	cases := []struct {
		name      string
		ok, over  wire.Message
		wantLimit string
	}{
		{"data", &wire.Store{Data: make([]byte, 100)}, &wire.Store{Data: make([]byte, 101)}, "MaxDataLen"},
		{"bytes", &wire.Begin{User: make([]byte, 40)}, &wire.Begin{User: make([]byte, 41)}, "MaxByteStringLen"},
		{"bytes-last", &wire.Begin{Extension: make([]byte, 40)}, &wire.Begin{Extension: make([]byte, 41)}, "MaxByteStringLen"},
		{"text", &wire.Failure{Text: strings.Repeat("a", 20)}, &wire.Failure{Text: strings.Repeat("a", 21)}, "MaxTextLen"},
		{"node", &wire.Hello{Node: strings.Repeat("a", 20)}, &wire.Hello{Node: strings.Repeat("a", 21)}, "MaxTextLen"},
		{"message", &wire.Begin{User: make([]byte, 40), Description: make([]byte, 40), Extension: make([]byte, 40)},
			&wire.Store{Data: make([]byte, 100), Epoch: 1 << 63, Seq: 1 << 63, OID: 1 << 63, Serial: 1 << 63}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := c.Marshal(tc.ok)
			if err != nil {
				t.Fatalf("Marshal within limits: %v", err)
			}
			if _, err := c.Unmarshal(b); err != nil {
				t.Fatalf("Unmarshal within limits: %v", err)
			}
			if tc.wantLimit == "" {
				return
			}
			over, err := big.Marshal(tc.over)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Unmarshal(over); !errors.Is(err, wire.ErrTooLarge) || !strings.Contains(err.Error(), tc.wantLimit) {
				t.Fatalf("Unmarshal beyond %s: %v", tc.wantLimit, err)
			}
			if _, err := c.Marshal(tc.over); !errors.Is(err, wire.ErrTooLarge) || !strings.Contains(err.Error(), tc.wantLimit) {
				t.Fatalf("Marshal beyond %s: %v", tc.wantLimit, err)
			}
		})
	}
	long := newCodec(t, wire.Config{MaxMessageLen: 100, MaxDataLen: 100, MaxByteStringLen: 40, MaxTextLen: 20})
	b, err := big.Marshal(&wire.Store{Data: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := long.Unmarshal(b); !errors.Is(err, wire.ErrTooLarge) || !strings.Contains(err.Error(), "MaxMessageLen") {
		t.Fatalf("Unmarshal of %d bytes with MaxMessageLen 100: %v", len(b), err)
	}
	if _, err := long.Marshal(&wire.Store{Data: make([]byte, 100)}); !errors.Is(err, wire.ErrTooLarge) || !strings.Contains(err.Error(), "MaxMessageLen") {
		t.Fatalf("Marshal of %d bytes with MaxMessageLen 100: %v", len(b), err)
	}
}

type unregistered struct {
	_ struct{} `cbor:",toarray"`
	X uint64
}

func (*unregistered) Method() string { return "unregistered" }

type fakeVote struct {
	_ struct{} `cbor:",toarray"`
	X uint64
}

func (*fakeVote) Method() string { return wire.MethodVote }

func TestMarshalRefuses(t *testing.T) {
	c := newCodec(t, wire.Config{})
	cases := []struct {
		name string
		m    wire.Message
		want error
	}{
		{"nil", nil, wire.ErrMalformed},
		{"nil-store", (*wire.Store)(nil), wire.ErrMalformed},
		{"nil-vote", (*wire.Vote)(nil), wire.ErrMalformed},
		{"unregistered", &unregistered{}, wire.ErrUnknownMethod},
		{"wrong-type-for-method", &fakeVote{}, wire.ErrUnknownMethod},
		{"invalid-utf8-node", &wire.Hello{Node: "\xff"}, wire.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if b, err := c.Marshal(tc.m); !errors.Is(err, tc.want) {
				t.Errorf("Marshal = %x, %v; want %v", b, err, tc.want)
			}
			if b, err := c.MarshalBuffers(tc.m); !errors.Is(err, tc.want) {
				t.Errorf("MarshalBuffers = %x, %v; want %v", b, err, tc.want)
			}
			dst := []byte("keep")
			head, _, err := c.AppendHead(dst, tc.m)
			if !errors.Is(err, tc.want) || string(head) != "keep" {
				t.Errorf("AppendHead = %q, %v; want dst unchanged and %v", head, err, tc.want)
			}
		})
	}
}

// chunk is a message kind defined outside the package with a payload.
type chunk struct {
	_     struct{} `cbor:",toarray"`
	Epoch uint64
	Name  string
	Data  []byte
}

func (*chunk) Method() string           { return "chunk1" }
func (c *chunk) PrimaryEpoch() uint64   { return c.Epoch }
func (c *chunk) Payload() []byte        { return c.Data }
func (c *chunk) SetPayload(data []byte) { c.Data = data }

func TestExtraKinds(t *testing.T) {
	c := newCodec(t, wire.Config{Extra: []wire.Message{&chunk{}, &unregistered{}}})
	data := []byte("snapshot bytes")
	m := &chunk{Epoch: 4, Name: "part-1", Data: data}
	b, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if want := reference(t, m); !bytes.Equal(b, want) {
		t.Fatalf("Marshal = %x, library reference = %x", b, want)
	}
	got, err := c.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) || &got.(*chunk).Data[0] != &b[len(b)-len(data)] {
		t.Fatalf("Unmarshal = %+v, want %+v aliasing the input", got, m)
	}
	if _, err := newCodec(t, wire.Config{}).Unmarshal(b); !errors.Is(err, wire.ErrUnknownMethod) {
		t.Fatalf("codec without the kind: %v, want ErrUnknownMethod", err)
	}
}

type notToArray struct{ X uint64 }

func (*notToArray) Method() string { return "nottoarray" }

type signedField struct {
	_ struct{} `cbor:",toarray"`
	X int64
}

func (*signedField) Method() string { return "signed" }

type shortArray struct {
	_ struct{} `cbor:",toarray"`
	X [4]byte
}

func (*shortArray) Method() string { return "shortarray" }

type payloadFirst struct {
	_    struct{} `cbor:",toarray"`
	Data []byte
	X    uint64
}

func (*payloadFirst) Method() string           { return "payloadfirst" }
func (p *payloadFirst) Payload() []byte        { return p.Data }
func (p *payloadFirst) SetPayload(data []byte) { p.Data = data }

type payloadElsewhere struct {
	_     struct{} `cbor:",toarray"`
	Data  []byte
	Other []byte
}

func (*payloadElsewhere) Method() string           { return "payloadelsewhere" }
func (p *payloadElsewhere) Payload() []byte        { return p.Data }
func (p *payloadElsewhere) SetPayload(data []byte) { p.Data = data }

type omitField struct {
	_ struct{} `cbor:",toarray"`
	X uint64   `cbor:",omitempty"`
}

func (*omitField) Method() string { return "omit" }

func TestExtraKindsRefused(t *testing.T) {
	cases := []struct {
		name string
		m    wire.Message
		want string
	}{
		{"nil", nil, "non-nil pointer"},
		{"nil-pointer", (*chunk)(nil), "non-nil pointer"},
		{"duplicate", &fakeVote{}, "already registered"},
		{"not-toarray", &notToArray{}, "toarray"},
		{"signed", &signedField{}, "field X"},
		{"array-without-length-check", &shortArray{}, "field X"},
		{"tagged-field", &omitField{}, "field X"},
		{"payload-not-last", &payloadFirst{}, "last field"},
		{"payload-not-the-last-field", &payloadElsewhere{}, "last field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.NewCodec(wire.Config{Extra: []wire.Message{tc.m}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCodec = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (wire.Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := wire.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	c := newCodec(t, wire.Config{MaxTextLen: 100})
	if got := c.Config(); got.MaxTextLen != 100 || got.MaxDataLen != wire.DefaultMaxDataLen {
		t.Fatalf("Config() = %+v", got)
	}
	cases := []struct {
		cfg  wire.Config
		want []string
	}{
		{wire.Config{MaxMessageLen: -1}, []string{"MaxMessageLen is -1"}},
		{wire.Config{MaxDataLen: -5}, []string{"MaxDataLen is -5"}},
		{wire.Config{MaxByteStringLen: -1}, []string{"MaxByteStringLen is -1"}},
		{wire.Config{MaxTextLen: -1}, []string{"MaxTextLen is -1"}},
		{wire.Config{MaxMessageLen: 100, MaxDataLen: 101, MaxByteStringLen: 50, MaxTextLen: 50}, []string{"MaxDataLen is 101, above MaxMessageLen 100"}},
		{wire.Config{MaxMessageLen: 100, MaxDataLen: 100, MaxByteStringLen: 200, MaxTextLen: 300},
			[]string{"MaxByteStringLen is 200", "MaxTextLen is 300"}},
		{wire.Config{MaxByteStringLen: 31}, []string{"MaxByteStringLen is 31", "at least 32"}},
		{wire.Config{MaxTextLen: 8}, []string{"MaxTextLen is 8", "at least 16"}},
		{wire.Config{MaxNestedLevels: 2}, []string{"MaxNestedLevels is 2", "between 4 and 64"}},
		{wire.Config{MaxArrayElements: 1 << 30}, []string{"MaxArrayElements is 1073741824"}},
	}
	for _, tc := range cases {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: Validate passed", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: Validate = %v, want it to mention %q", tc.cfg, err, w)
			}
		}
		if _, err := wire.NewCodec(tc.cfg); err == nil {
			t.Errorf("%+v: NewCodec accepted a bad Config", tc.cfg)
		}
	}
}

func TestFailureCodeString(t *testing.T) {
	for code, want := range map[wire.FailureCode]string{
		wire.FailureUnknown: "unknown", wire.FailureStorage: "storage", wire.FailureChainMismatch: "chain-mismatch",
		wire.FailureProtocol: "protocol", wire.FailureConflict: "conflict", wire.FailureOutOfOrder: "out-of-order", 99: "code(99)",
	} {
		if got := code.String(); got != want {
			t.Errorf("FailureCode(%d).String() = %q, want %q", uint64(code), got, want)
		}
	}
	if got := (wire.Chain{0xab}).String(); got != "ab"+strings.Repeat("00", 31) {
		t.Errorf("Chain.String() = %q", got)
	}
}

// TestUnknownFailureCodeDecodes checks that a code this version does not
// know still decodes, so a newer replica's report is not lost.
func TestUnknownFailureCodeDecodes(t *testing.T) {
	c := newCodec(t, wire.Config{})
	b, err := c.Marshal(&wire.Failure{Seq: 1, Code: 99, Text: "new"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Unmarshal(b)
	if err != nil || m.(*wire.Failure).Code != 99 {
		t.Fatalf("Unmarshal = %+v, %v", m, err)
	}
}

// TestConcurrentUse shares one codec and one message between goroutines;
// run with -race.
func TestConcurrentUse(t *testing.T) {
	c := newCodec(t, wire.Config{})
	m := &wire.Store{Epoch: 1, Seq: 2, OID: 3, Serial: 4, Data: bytes.Repeat([]byte("d"), 1000)}
	want, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b, err := c.Marshal(m)
				if err == nil && !bytes.Equal(b, want) {
					err = errors.New("encoding differs")
				}
				if err == nil {
					_, err = c.Unmarshal(want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestReplayRecords(t *testing.T) {
	good := wire.AppendReplayRecord(wire.AppendReplayRecord(nil, 0x10, []byte("object state")), 0x11, nil)
	recs, err := (&wire.Replay{Records: good}).DecodeRecords()
	want := []wire.ReplayRecord{{OID: 0x10, Data: []byte("object state")}, {OID: 0x11, Data: []byte{}}}
	if err != nil || len(recs) != 2 || recs[0].OID != want[0].OID || string(recs[0].Data) != string(want[0].Data) ||
		recs[1].OID != want[1].OID || len(recs[1].Data) != 0 {
		t.Fatalf("DecodeRecords = %+v, %v; want %+v", recs, err, want)
	}
	if recs, err := (&wire.Replay{}).DecodeRecords(); err != nil || len(recs) != 0 {
		t.Fatalf("DecodeRecords of no records = %+v, %v", recs, err)
	}
	for name, b := range map[string][]byte{
		"head cut short":        good[:10],
		"data cut short":        good[:20],
		"second head cut":       good[:len(good)-3],
		"length beyond the end": {0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		recs, err := (&wire.Replay{TID: 9, Records: b}).DecodeRecords()
		if !errors.Is(err, wire.ErrMalformed) || recs != nil {
			t.Errorf("%s: DecodeRecords = %+v, %v; want ErrMalformed and no records", name, recs, err)
		}
	}
}

func TestTxnRecords(t *testing.T) {
	good := wire.AppendTxnRecord(wire.AppendTxnRecord(nil, 0x10, tid1, []byte("object state")), 0x11, 0, nil)
	recs, err := (&wire.Txn{Records: good}).DecodeRecords()
	want := []wire.TxnRecord{{OID: 0x10, Serial: tid1, Data: []byte("object state")}, {OID: 0x11, Data: []byte{}}}
	if err != nil || !reflect.DeepEqual(recs, want) {
		t.Fatalf("DecodeRecords = %+v, %v; want %+v", recs, err, want)
	}
	if recs, err := (&wire.Txn{}).DecodeRecords(); err != nil || len(recs) != 0 {
		t.Fatalf("DecodeRecords of no records = %+v, %v", recs, err)
	}
	for name, b := range map[string][]byte{
		"head cut short":        good[:20],
		"data cut short":        good[:30],
		"second head cut":       good[:len(good)-3],
		"length beyond the end": append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	} {
		recs, err := (&wire.Txn{TID: 9, Records: b}).DecodeRecords()
		if !errors.Is(err, wire.ErrMalformed) || recs != nil {
			t.Errorf("%s: DecodeRecords = %+v, %v; want ErrMalformed and no records", name, recs, err)
		}
	}
}
