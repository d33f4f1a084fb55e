package fragment

import (
	"errors"
	"strings"
	"testing"
)

// TestRejectAndResync feeds each malformed sequence, checks the error, that
// nothing of the message survives, and that reassembly resumes only at the
// next offset 0.
func TestRejectAndResync(t *testing.T) {
	small := Config{MaxFragment: HeaderSize + 3, MaxMessage: 10} // 3-byte bodies
	full := func(seed byte) []byte { return seq(3, seed) }
	for _, tc := range []struct {
		name  string
		cfg   Config
		frags [][]byte // all but the last must be accepted
		want  error
		text  string // part of the error message
	}{
		{"empty input", small, [][]byte{{}}, ErrTruncated, "got 0 bytes"},
		{"short header", small, [][]byte{{1, 0, 0, 0}}, ErrTruncated, "got 4 bytes, a fragment has at least 5"},
		{"version 0", small, [][]byte{enc(0, 0, 1, nil)}, ErrVersion, "got version 0, want 1"},
		{"version 2", small, [][]byte{enc(2, 0, 1, nil)}, ErrVersion, "got version 2, want 1"},
		{"version 2 mid-message", small, [][]byte{enc(1, 0, 2, full(0)), enc(2, 1, 2, full(3))}, ErrVersion, "version 2"},
		{"count 0", small, [][]byte{enc(1, 0, 0, nil)}, ErrHeader, "count 0"},
		{"offset equals count", small, [][]byte{enc(1, 2, 2, full(0))}, ErrHeader, "offset 2 is not below count 2"},
		{"offset above count", small, [][]byte{enc(1, 0, 2, full(0)), enc(1, 9, 2, full(0))}, ErrHeader, "offset 9 is not below count 2"},
		{"continuation while idle", small, [][]byte{enc(1, 1, 3, full(0))}, ErrSequence, "got fragment 1/3 with no message in progress, want offset 0"},
		{"gap", small, [][]byte{enc(1, 0, 3, full(0)), enc(1, 2, 3, full(0))}, ErrSequence, "gap: got fragment 2/3, want 1"},
		{"repeat", small, [][]byte{enc(1, 0, 3, full(0)), enc(1, 1, 3, full(3)), enc(1, 1, 3, full(3))}, ErrSequence, "repeat: got fragment 1/3, want 2"},
		{"restart mid-message", small, [][]byte{enc(1, 0, 3, full(0)), enc(1, 0, 3, full(0))}, ErrSequence, "repeat: got fragment 0/3, want 1"},
		{"count changed", small, [][]byte{enc(1, 0, 3, full(0)), enc(1, 1, 2, full(3))}, ErrSequence, "count changed from 3 to 2 at fragment 1"},
		{"body too large", small, [][]byte{enc(1, 0, 1, seq(4, 0))}, ErrBodySize, "4-byte body, the maximum is 3 (MaxFragment 8)"},
		{"body too large mid-message", small, [][]byte{enc(1, 0, 2, full(0)), enc(1, 1, 2, seq(4, 0))}, ErrBodySize, "fragment 1/2 has a 4-byte body"},
		{"short first", small, [][]byte{enc(1, 0, 2, seq(2, 0))}, ErrBodySize, "non-final fragment 0/2 has a 2-byte body, want exactly 3"},
		{"short middle", small, [][]byte{enc(1, 0, 3, full(0)), enc(1, 1, 3, seq(1, 0))}, ErrBodySize, "non-final fragment 1/3 has a 1-byte body"},
		{"empty final", small, [][]byte{enc(1, 0, 2, full(0)), enc(1, 1, 2, nil)}, ErrBodySize, "final fragment 1/2 is empty"},
		{"count proves too large", small, [][]byte{enc(1, 0, 5, full(0))}, ErrMessageSize, "5 fragments of 3 body bytes make at least 13 bytes, MaxMessage is 10"},
		{"huge count", small, [][]byte{enc(1, 0, MaxCount, full(0))}, ErrMessageSize, "at least 196603 bytes"},
		{"final too large", small, [][]byte{enc(1, 0, 4, full(0)), enc(1, 1, 4, full(3)), enc(1, 2, 4, full(6)), enc(1, 3, 4, seq(2, 9))}, ErrMessageSize, "11 bytes, MaxMessage is 10"},
		{"single too large", Config{MaxFragment: HeaderSize + 3, MaxMessage: 2}, [][]byte{enc(1, 0, 1, full(0))}, ErrMessageSize, "3 bytes, MaxMessage is 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustReassembler(t, tc.cfg)
			last := len(tc.frags) - 1
			for i, f := range tc.frags[:last] {
				if msg, done, err := r.Add(f); err != nil || done || msg != nil {
					t.Fatalf("fragment %d: Add = %q, %v, %v; want more needed", i, msg, done, err)
				}
			}
			msg, done, err := r.Add(tc.frags[last])
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrProtocol) {
				t.Fatalf("Add = %v, want %v (an ErrProtocol)", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			if msg != nil || done || r.InProgress() {
				t.Fatalf("after the error: msg %q, done %v, in progress %v", msg, done, r.InProgress())
			}
			// The rest of the broken message is refused until offset 0.
			if _, _, err := r.Add(enc(1, 1, 2, seq(2, 0))); !errors.Is(err, ErrSequence) {
				t.Fatalf("continuation after the error: %v, want ErrSequence", err)
			}
			// A whole new message then reassembles, with nothing of the old.
			s := mustSplitter(t, tc.cfg)
			roundTrip(t, s, r, []byte("xy"))
			if tc.cfg.MaxMessage >= 7 {
				roundTrip(t, s, r, []byte("fresh!!"))
			}
		})
	}
}

func TestSingleFragmentAliasesInput(t *testing.T) {
	var r Reassembler
	frag := enc(1, 0, 1, []byte("hello"))
	msg, done, err := r.Add(frag)
	if err != nil || !done || string(msg) != "hello" {
		t.Fatalf("Add = %q, %v, %v", msg, done, err)
	}
	if &msg[0] != &frag[HeaderSize] {
		t.Fatal("a single-fragment message was copied")
	}
}

func TestMultiFragmentOwnsItsBuffer(t *testing.T) {
	cfg := Config{MaxFragment: HeaderSize + 4, MaxMessage: 100}
	r := mustReassembler(t, cfg)
	frags := [][]byte{enc(1, 0, 3, []byte("abcd")), enc(1, 1, 3, []byte("efgh")), enc(1, 2, 3, []byte("ij"))}
	var msg []byte
	for _, f := range frags {
		m, _, err := r.Add(f)
		if err != nil {
			t.Fatal(err)
		}
		msg = m
		clear(f) // the caller may reuse a fragment's buffer once Add returns
	}
	if string(msg) != "abcdefghij" {
		t.Fatalf("message %q", msg)
	}
	if cap(msg) != 12 {
		t.Errorf("buffer capacity %d, want count × body = 12", cap(msg))
	}
	// The next message must get a new buffer: the caller owns this one.
	next := roundTrip(t, mustSplitter(t, cfg), r, []byte("klmnopqrs"))
	if &next[0] == &msg[0] || string(msg) != "abcdefghij" {
		t.Fatalf("a later message reused the caller's buffer: %q", msg)
	}
}

func TestCapacityCappedByMaxMessage(t *testing.T) {
	cfg := Config{MaxFragment: HeaderSize + 4, MaxMessage: 10}
	r := mustReassembler(t, cfg)
	msg := roundTrip(t, mustSplitter(t, cfg), r, []byte("0123456789")) // 3 fragments, 12 bytes of bodies
	if cap(msg) != 10 {
		t.Errorf("buffer capacity %d, want MaxMessage 10", cap(msg))
	}
}

func TestRecycle(t *testing.T) {
	cfg := Config{MaxFragment: HeaderSize + 4, MaxMessage: 100}
	s := mustSplitter(t, cfg)
	r := mustReassembler(t, cfg)

	first := roundTrip(t, s, r, seq(20, 0))
	r.Recycle(first)
	second := roundTrip(t, s, r, seq(10, 50)) // fits in the recycled buffer
	if &second[0] != &first[0] {
		t.Error("a recycled buffer was not reused")
	}

	// A single-fragment message aliases the caller's fragment: never reused.
	frag := enc(1, 0, 1, []byte("abc"))
	one, _, err := r.Add(frag)
	if err != nil {
		t.Fatal(err)
	}
	r.Recycle(one)
	roundTrip(t, s, r, seq(9, 9))
	if string(frag[HeaderSize:]) != "abc" {
		t.Fatalf("a recycled single-fragment message was overwritten: %q", frag[HeaderSize:])
	}

	// The buffer of a discarded message is reused too.
	r = mustReassembler(t, cfg)
	if _, _, err := r.Add(enc(1, 0, 5, seq(4, 0))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Add(enc(1, 3, 5, seq(4, 0))); !errors.Is(err, ErrSequence) {
		t.Fatalf("gap: %v", err)
	}
	a := roundTrip(t, s, r, seq(11, 1)) // needs 12 bytes; the discarded buffer has 20
	if cap(a) != 20 {
		t.Errorf("message capacity %d: the discarded 20-byte buffer was not reused", cap(a))
	}
	b := roundTrip(t, s, r, seq(11, 2))
	if &a[0] == &b[0] {
		t.Fatal("the discarded buffer was handed out twice")
	}
}
