package msgstream_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/wire"
)

var update = flag.Bool("update", false, "rewrite the fuzz seed corpus in testdata/fuzz/FuzzReceive")

// fuzzConfig has tiny fragments so that short inputs span several.
func fuzzConfig() msgstream.Config {
	return msgstream.Config{Fragment: fragment.Config{MaxFragment: 16, MaxMessage: 4096}}
}

// chunks encodes fragments as the fuzz input: each a one-byte length and
// the bytes.
func chunks(frags ...[]byte) []byte {
	var b []byte
	for _, f := range frags {
		b = append(append(b, byte(len(f))), f...)
	}
	return b
}

// seeds returns named fuzz inputs: fragment sequences a Sender produces and
// broken variants.
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	valid := map[string]wire.Message{
		"vote":        &wire.Vote{Epoch: 1, Seq: 2},
		"store-empty": &wire.Store{Epoch: 1, Seq: 2, OID: 3},
		"store":       &wire.Store{Epoch: 1, Seq: 2, OID: 3, Serial: 4, Data: []byte("some object state, forty bytes long....")},
		"live":        &wire.Live{Epoch: 1, NextSeq: 5, TID: 6},
	}
	for name, m := range valid {
		rec := &recorder{}
		if err := newSender(t, rec, fuzzConfig()).Send(t.Context(), "", m); err != nil {
			t.Fatal(err)
		}
		var frags [][]byte
		for i := range rec.sends {
			frags = append(frags, rec.joined(i))
		}
		out[name] = chunks(frags...)
		if len(frags) > 2 {
			out[name+"-gap"] = chunks(append([][]byte{frags[0]}, frags[2:]...)...)
			out[name+"-repeat"] = chunks(append([][]byte{frags[0]}, frags...)...)
			out[name+"-twice"] = chunks(append(frags, frags...)...)
		}
	}
	out["garbage-in-one-fragment"] = chunks([]byte{1, 0, 0, 0, 1, 0x82, 0x61, 'x'})
	out["bad-version"] = chunks([]byte{2, 0, 0, 0, 1, 0})
	out["empty-fragment"] = chunks(nil)
	return out
}

// FuzzReceive feeds arbitrary fragment sequences from one origin: the
// Receiver must never panic, every error must be a protocol error naming
// the origin, and every message it returns must be canonical.
func FuzzReceive(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	codec, err := wire.NewCodec(wire.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := newReceiver(t, fuzzConfig())
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			frag := in[1 : 1+n]
			in = in[1+n:]
			m, err := r.Receive(gcs.Event{Kind: gcs.EventMessage, Origin: "f#1", Data: frag})
			if err != nil {
				var pe *msgstream.ProtocolError
				if m != nil || !errors.As(err, &pe) || pe.Origin != "f#1" || !errors.Is(err, msgstream.ErrProtocol) {
					t.Fatalf("Receive = %v, %v", m, err)
				}
				continue
			}
			if m != nil {
				if _, err := codec.Marshal(m); err != nil {
					t.Fatalf("received %+v does not re-encode: %v", m, err)
				}
			}
		}
	})
}

// TestFuzzCorpus keeps testdata/fuzz/FuzzReceive in step with seeds;
// -update rewrites it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReceive")
	for name, b := range seeds(t) {
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (%v): run go test ./internal/msgstream -run TestFuzzCorpus -update", path, err)
		}
	}
}
