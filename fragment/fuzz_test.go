package fragment

import (
	"bytes"
	"errors"
	"testing"
)

// frame joins fragments into a fuzz stream: each one preceded by its length
// in one byte.
func frame(frags ...[]byte) []byte {
	var b []byte
	for _, f := range frags {
		b = append(append(b, byte(len(f))), f...)
	}
	return b
}

// FuzzReassembler feeds arbitrary fragment sequences to a Reassembler. It
// checks that nothing panics, that every error is a protocol error leaving
// no message in progress, that no message exceeds MaxMessage, and that a
// message is produced only from a valid sequence: the fragments accepted for
// it must be exactly those a Splitter makes of it. Run it with
//
//	go test -run='^$' -fuzz=FuzzReassembler ./fragment/
func FuzzReassembler(f *testing.F) {
	// Arguments: maxBody selects MaxFragment 6..21, maxMessage selects
	// MaxMessage 1..512, stream holds length-prefixed fragments.
	body := func(n int, seed byte) []byte { return seq(n, seed) }
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 1, body(3, 0))))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 1, nil)))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 3, body(3, 0)), enc(1, 1, 3, body(3, 3)), enc(1, 2, 3, body(1, 6))))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 3, body(3, 0)), enc(1, 2, 3, body(1, 6)), enc(1, 0, 2, body(3, 0)), enc(1, 1, 2, body(2, 3))))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 2, body(3, 0)), enc(1, 0, 2, body(3, 0)), enc(1, 1, 2, body(3, 0))))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 2, body(3, 0)), enc(1, 1, 3, body(3, 0))))
	f.Add(uint8(2), uint16(99), frame(enc(1, 0, 2, body(2, 0)), enc(1, 0, 2, body(3, 0)), enc(1, 1, 2, nil)))
	f.Add(uint8(2), uint16(9), frame(enc(1, 0, 4, body(3, 0)), enc(1, 1, 4, body(3, 3)), enc(1, 2, 4, body(3, 6)), enc(1, 3, 4, body(2, 9))))
	f.Add(uint8(0), uint16(511), frame(enc(1, 0, 65535, body(1, 0)), enc(2, 0, 1, nil), enc(1, 0, 0, nil), []byte{1, 0}))
	f.Fuzz(func(t *testing.T, maxBody uint8, maxMessage uint16, stream []byte) {
		cfg := Config{MaxFragment: HeaderSize + 1 + int(maxBody%16), MaxMessage: 1 + int(maxMessage%512)}
		s := mustSplitter(t, cfg)
		r := mustReassembler(t, cfg)
		original := bytes.Clone(stream)
		var accepted [][]byte // fragments of the message in progress
		for rest := stream; len(rest) > 0; {
			n := min(int(rest[0]), len(rest)-1)
			frag := rest[1 : 1+n : 1+n]
			rest = rest[1+n:]
			msg, done, err := r.Add(frag)
			switch {
			case err != nil:
				if !errors.Is(err, ErrProtocol) || msg != nil || done || r.InProgress() {
					t.Fatalf("error %v with msg %x, done %v, in progress %v", err, msg, done, r.InProgress())
				}
				accepted = nil
			case !done:
				if msg != nil || !r.InProgress() {
					t.Fatalf("need more, but msg %x, in progress %v", msg, r.InProgress())
				}
				accepted = append(accepted, bytes.Clone(frag))
			default:
				accepted = append(accepted, bytes.Clone(frag))
				if len(msg) > cfg.MaxMessage || r.InProgress() {
					t.Fatalf("message of %d bytes (MaxMessage %d), in progress %v", len(msg), cfg.MaxMessage, r.InProgress())
				}
				fs, err := s.Split(msg)
				if err != nil {
					t.Fatalf("the sender refuses a message the receiver accepted: %v", err)
				}
				if fs.Len() != len(accepted) {
					t.Fatalf("message from %d fragments, a sender makes %d", len(accepted), fs.Len())
				}
				for i, f := range fs.All() {
					if !bytes.Equal(f.AppendTo(nil), accepted[i]) {
						t.Fatalf("fragment %d accepted as %x, a sender makes %x", i, accepted[i], f.AppendTo(nil))
					}
				}
				accepted = nil
				r.Recycle(msg)
			}
		}
		if !bytes.Equal(stream, original) {
			t.Fatal("the Reassembler wrote into its input")
		}
	})
}
