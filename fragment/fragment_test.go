package fragment

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// enc builds a raw fragment, including ones the format forbids.
func enc(version byte, offset, count int, body []byte) []byte {
	b := []byte{version, byte(offset >> 8), byte(offset), byte(count >> 8), byte(count)}
	return append(b, body...)
}

// seq returns n bytes of a recognisable pattern starting at seed.
func seq(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func mustSplitter(t testing.TB, cfg Config) Splitter {
	t.Helper()
	s, err := NewSplitter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustReassembler(t testing.TB, cfg Config) *Reassembler {
	t.Helper()
	r, err := NewReassembler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkFragments verifies every header field, the body sizes and that every
// body is a view of payload.
func checkFragments(t testing.TB, fs Fragments, payload []byte, maxBody int) {
	t.Helper()
	want := 1
	if len(payload) > maxBody {
		want = (len(payload) + maxBody - 1) / maxBody
	}
	if fs.Len() != want {
		t.Fatalf("payload of %d bytes, max body %d: %d fragments, want %d", len(payload), maxBody, fs.Len(), want)
	}
	n := 0
	for i, f := range fs.All() {
		if f.Header[0] != Version || f.Offset() != i || f.Count() != want {
			t.Fatalf("fragment %d: header %x, want version %d offset %d count %d", i, f.Header, Version, i, want)
		}
		if i < want-1 && len(f.Body) != maxBody || i == want-1 && len(payload) > 0 && len(f.Body) == 0 {
			t.Fatalf("fragment %d/%d: body of %d bytes, max %d", i, want, len(f.Body), maxBody)
		}
		if cap(f.Body) != len(f.Body) {
			t.Fatalf("fragment %d: body capacity %d beyond its length %d", i, cap(f.Body), len(f.Body))
		}
		if len(f.Body) > 0 && &f.Body[0] != &payload[n] {
			t.Fatalf("fragment %d: body is a copy, not a view of the payload", i)
		}
		if f.Len() != HeaderSize+len(f.Body) {
			t.Fatalf("fragment %d: Len %d, want %d", i, f.Len(), HeaderSize+len(f.Body))
		}
		n += len(f.Body)
	}
	if n != len(payload) {
		t.Fatalf("bodies hold %d bytes, payload has %d", n, len(payload))
	}
}

// roundTrip splits payload, feeds every fragment to r and returns the
// message, failing unless exactly the last fragment completes it.
func roundTrip(t testing.TB, s Splitter, r *Reassembler, payload []byte) []byte {
	t.Helper()
	fs, err := s.Split(payload)
	if err != nil {
		t.Fatal(err)
	}
	var msg []byte
	for i, f := range fs.All() {
		m, done, err := r.Add(f.AppendTo(nil))
		if err != nil {
			t.Fatalf("fragment %d/%d: %v", i, fs.Len(), err)
		}
		if done != (i == fs.Len()-1) {
			t.Fatalf("fragment %d/%d: done=%v", i, fs.Len(), done)
		}
		msg = m
	}
	if !bytes.Equal(msg, payload) {
		t.Fatalf("reassembled %d bytes differ from the %d-byte payload", len(msg), len(payload))
	}
	if r.InProgress() {
		t.Fatal("message still in progress after its last fragment")
	}
	return msg
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{}, DefaultConfig(), {MaxFragment: HeaderSize + 1, MaxMessage: 1}, {MaxFragment: LimitMaxFragment}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{MaxFragment: HeaderSize}, []string{"MaxFragment is 5", "from 6", "0 for the default 102400"}},
		{Config{MaxFragment: -1}, []string{"MaxFragment is -1"}},
		{Config{MaxFragment: LimitMaxFragment + 1}, []string{"MaxFragment is 1073741825", "to 1073741824"}},
		{Config{MaxMessage: -3}, []string{"MaxMessage is -3", "positive", "0 for the default"}},
		{Config{MaxFragment: 2, MaxMessage: -1}, []string{"MaxFragment is 2", "MaxMessage is -1"}},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not say %q", tc.cfg, err, w)
			}
		}
		if _, err := NewSplitter(tc.cfg); err == nil {
			t.Errorf("NewSplitter(%+v): no error", tc.cfg)
		}
		if _, err := NewReassembler(tc.cfg); err == nil {
			t.Errorf("NewReassembler(%+v): no error", tc.cfg)
		}
	}
}

func TestSplitBoundaries(t *testing.T) {
	const maxBody = DefaultMaxFragment - HeaderSize
	s := mustSplitter(t, Config{})
	r := mustReassembler(t, Config{})
	for _, tc := range []struct {
		name  string
		size  int
		count int
	}{
		{"empty", 0, 1},
		{"one byte", 1, 1},
		{"max-5", maxBody, 1},
		{"max-4", maxBody + 1, 2},
		{"exactly two", 2 * maxBody, 2},
		{"two plus one", 2*maxBody + 1, 3},
		{"many", 600*maxBody + 17, 601},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := seq(tc.size, 7)
			fs, err := s.Split(payload)
			if err != nil {
				t.Fatal(err)
			}
			if fs.Len() != tc.count {
				t.Fatalf("%d fragments, want %d", fs.Len(), tc.count)
			}
			checkFragments(t, fs, payload, maxBody)
			roundTrip(t, s, r, payload)
		})
	}
}

func TestEmptyPayload(t *testing.T) {
	for _, payload := range [][]byte{nil, {}} {
		fs, err := Splitter{}.Split(payload)
		if err != nil {
			t.Fatal(err)
		}
		f := fs.At(0)
		if fs.Len() != 1 || f.Header != [HeaderSize]byte{1, 0, 0, 0, 1} || len(f.Body) != 0 {
			t.Fatalf("empty payload: %d fragments, first %x %x", fs.Len(), f.Header, f.Body)
		}
		var r Reassembler
		msg, done, err := r.Add(f.AppendTo(nil))
		if err != nil || !done || len(msg) != 0 {
			t.Fatalf("Add = %q, %v, %v; want an empty message", msg, done, err)
		}
	}
}

func TestSplit64MiB(t *testing.T) {
	payload := seq(64<<20, 1)
	s := mustSplitter(t, DefaultConfig())
	fs, err := s.Split(payload)
	if err != nil {
		t.Fatal(err)
	}
	checkFragments(t, fs, payload, DefaultMaxFragment-HeaderSize)
	roundTrip(t, s, mustReassembler(t, DefaultConfig()), payload)
}

func TestFragmentEncodings(t *testing.T) {
	s := mustSplitter(t, Config{MaxFragment: 8})
	payload := []byte("abcdefg")
	fs, err := s.Split(payload)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{
		enc(1, 0, 3, []byte("abc")),
		enc(1, 1, 3, []byte("def")),
		enc(1, 2, 3, []byte("g")),
	}
	for i, f := range fs.All() {
		if got := f.AppendTo([]byte("x")); !bytes.Equal(got, append([]byte("x"), want[i]...)) {
			t.Errorf("AppendTo: fragment %d = %x, want %x", i, got[1:], want[i])
		}
		if got := bytes.Join(f.Parts(), nil); !bytes.Equal(got, want[i]) {
			t.Errorf("Parts: fragment %d = %x, want %x", i, got, want[i])
		}
	}
	// Appending to a body must not overwrite the next fragment's bytes.
	f := fs.At(0)
	_ = append(f.Body, 'X')
	if string(payload) != "abcdefg" {
		t.Errorf("appending to a body changed the payload to %q", payload)
	}
}

func TestAllStopsEarly(t *testing.T) {
	fs, err := mustSplitter(t, Config{MaxFragment: 6}).Split(seq(10, 0))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range fs.All() {
		if i == 3 {
			break
		}
		n++
	}
	if n != 3 {
		t.Fatalf("visited %d fragments before break, want 3", n)
	}
}

func TestAtOutOfRange(t *testing.T) {
	fs, err := Splitter{}.Split(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{-1, 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("At(%d) of 1 fragment did not panic", i)
				}
			}()
			fs.At(i)
		}()
	}
}

func TestSenderLimits(t *testing.T) {
	cfg := Config{MaxFragment: HeaderSize + 1, MaxMessage: 1 << 20}
	s := mustSplitter(t, cfg)
	if n, err := s.Count(MaxCount); err != nil || n != MaxCount {
		t.Fatalf("Count(%d) = %d, %v; want %d fragments", MaxCount, n, err, MaxCount)
	}
	_, err := s.Split(make([]byte, MaxCount+1))
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrProtocol) {
		t.Fatalf("Split of %d one-byte fragments: %v, want ErrTooLarge", MaxCount+1, err)
	}
	if !strings.Contains(err.Error(), "65536 fragments") || !strings.Contains(err.Error(), "allows 65535") {
		t.Errorf("error %q does not give the counts", err)
	}
	if _, err := s.Count(1<<20 + 1); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "MaxMessage 1048576") {
		t.Errorf("Count above MaxMessage: %v, want ErrTooLarge naming MaxMessage", err)
	}
	// The largest message the format allows goes through whole.
	roundTrip(t, s, mustReassembler(t, cfg), seq(MaxCount, 3))
}

func TestZeroValuesUseDefaults(t *testing.T) {
	var s Splitter
	payload := seq(DefaultMaxFragment, 0) // needs two fragments by default
	fs, err := s.Split(payload)
	if err != nil {
		t.Fatal(err)
	}
	checkFragments(t, fs, payload, DefaultMaxFragment-HeaderSize)
	roundTrip(t, s, &Reassembler{}, payload)
	if _, err := s.Count(DefaultMaxMessage + 1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("zero Splitter accepted %d bytes: %v", DefaultMaxMessage+1, err)
	}
}

// TestRandomRoundTrips splits random payloads with random fragment sizes and
// checks the fragments and the reassembled message.
func TestRandomRoundTrips(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		maxFragment := HeaderSize + 1 + rng.IntN(3000)
		if rng.IntN(4) == 0 {
			maxFragment = HeaderSize + 1 + rng.IntN(8)
		}
		maxBody := maxFragment - HeaderSize
		size := rng.IntN(min(MaxCount*maxBody, 200_000) + 1)
		if rng.IntN(4) == 0 { // land on and around a fragment boundary
			size = max(0, rng.IntN(20)*maxBody+rng.IntN(3)-1)
		}
		cfg := Config{MaxFragment: maxFragment, MaxMessage: size + rng.IntN(2*maxBody+1) + 1}
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = byte(rng.Uint32())
		}
		s := mustSplitter(t, cfg)
		fs, err := s.Split(payload)
		if err != nil {
			t.Fatalf("%+v, %d bytes: %v", cfg, size, err)
		}
		checkFragments(t, fs, payload, maxBody)
		roundTrip(t, s, mustReassembler(t, cfg), payload)
	}
}

func TestPartsAllocatesOnce(t *testing.T) {
	f := Fragment{Header: header(0, 1), Body: []byte("abc")}
	var parts [][]byte
	if n := testing.AllocsPerRun(100, func() { parts = f.Parts() }); n != 1 {
		t.Errorf("Parts allocates %v times, want 1", n)
	}
	f.Header[0] = 9 // the parts hold their own header
	if got := bytes.Join(parts, nil); !bytes.Equal(got, enc(1, 0, 1, []byte("abc"))) {
		t.Errorf("parts %x", got)
	}
}
