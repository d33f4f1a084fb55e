package gcs

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// encodeAll encodes one frame of every type.
func encodeAll() []byte {
	var w frameWriter
	w.hello(&frame{version: protocolVersion, flags: flagOpen, maxMessage: 102400, winMsgs: 4096, winBytes: 1 << 24,
		session: 7, delivered: 9, group: []byte("g"), name: []byte("node")})
	w.welcome(7, 3, "node#2")
	w.bye(byeEvicted, "too slow")
	w.ack(42)
	w.message(5, newPayload("p#1", "", [][]byte{[]byte("hello "), []byte("world")}, 11))
	w.message(6, newPayload("p#1", "a#2", [][]byte{bytes.Repeat([]byte("x"), largePart+1)}, largePart+1))
	w.message(7, &payload{kind: frameView, view: &View{ID: 3, Members: []MemberID{"p#1", "a#2"}}})
	w.message(8, &payload{kind: frameLeave})
	var buf bytes.Buffer
	if err := w.flush(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func TestFrameRoundTrip(t *testing.T) {
	d := newDecoder(102400)
	r := bufio.NewReader(bytes.NewReader(encodeAll()))
	var got []string
	for {
		var f frame
		err := d.read(r, &f)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch f.typ {
		case frameHello:
			if f.session != 7 || f.delivered != 9 || string(f.group) != "g" || string(f.name) != "node" || f.winBytes != 1<<24 || f.flags != flagOpen {
				t.Fatalf("hello %+v", f)
			}
		case frameWelcome:
			if f.session != 7 || f.seq != 3 || string(f.name) != "node#2" {
				t.Fatalf("welcome %+v", f)
			}
		case frameBye:
			if f.code != byeEvicted || string(f.text) != "too slow" {
				t.Fatalf("bye %+v", f)
			}
		case frameAck, frameLeave:
			if f.seq != 42 && f.seq != 8 {
				t.Fatalf("ack/leave %+v", f)
			}
		case frameData:
			if f.seq == 5 && (string(f.payload) != "hello world" || f.flags != 0 || string(f.origin) != "p#1") {
				t.Fatalf("data %+v", f)
			}
			if f.seq == 6 && (len(f.payload) != largePart+1 || f.flags != flagUnicast || string(f.dest) != "a#2") {
				t.Fatalf("data %+v", f)
			}
		case frameView:
			if f.viewID != 3 || len(f.members) != 2 || string(f.members[1]) != "a#2" {
				t.Fatalf("view %+v", f)
			}
		}
		got = append(got, string(rune('0'+f.typ)))
	}
	if s := strings.Join(got, ""); s != "12345567" {
		t.Fatalf("frame types %s, want 12345567", s)
	}
}

func TestFrameRejects(t *testing.T) {
	frameOf := func(b ...byte) []byte {
		return append([]byte{0, 0, 0, byte(len(b))}, b...)
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty frame", []byte{0, 0, 0, 0, 5}, "empty frame"},
		{"unknown type", frameOf(99), "unknown frame type 99"},
		{"short ack", frameOf(frameAck, 0, 0, 1), "truncated"},
		{"trailing bytes", frameOf(frameAck, 0, 0, 0, 0, 0, 0, 0, 1, 9), "trailing"},
		{"seq zero", frameOf(frameLeave, 0, 0, 0, 0, 0, 0, 0, 0), "sequence number 0"},
		{"bad bye code", frameOf(frameBye, 77, 0, 0), "unknown code 77"},
		{"unicast without dest", frameOf(frameData, 0, 0, 0, 0, 0, 0, 0, 1, flagUnicast, 0, 0), "unicast flag"},
		{"view of nobody", frameOf(frameView, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0), "no members"},
		{"too large frame", []byte{0, 1, 0, 0, frameData}, "frame of 65536 bytes exceeds the limit of 1522 (MaxMessage 1000"},
		{"truncated stream", []byte{0, 0, 0, 9, frameAck, 1}, "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f frame
			err := newDecoder(1000).read(bufio.NewReader(bytes.NewReader(c.in)), &f)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	// A data frame whose body exceeds MaxMessage, within the frame limit.
	var w frameWriter
	w.message(1, newPayload("p#1", "", [][]byte{make([]byte, 1001)}, 1001))
	var buf bytes.Buffer
	_ = w.flush(&buf)
	var f frame
	err := newDecoder(1000).read(bufio.NewReader(&buf), &f)
	if !errors.Is(err, ErrProtocol) || !errors.Is(err, ErrMessageTooLarge) ||
		!strings.Contains(err.Error(), "received message of 1001 bytes exceeds MaxMessage 1000") {
		t.Fatalf("error %v", err)
	}
}

// FuzzDecodeFrame feeds arbitrary bytes to the frame reader: it must never
// panic, and every frame it accepts must encode back to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeAll())
	f.Add([]byte{0, 0, 0, 9, frameAck, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, frameData})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newDecoder(1000)
		r := bufio.NewReader(bytes.NewReader(in))
		for range 64 {
			var fr frame
			if err := d.read(r, &fr); err != nil {
				return
			}
			var w frameWriter
			switch fr.typ {
			case frameHello:
				w.hello(&fr)
			case frameWelcome:
				w.welcome(fr.session, fr.seq, MemberID(fr.name))
			case frameBye:
				w.bye(fr.code, string(fr.text))
			case frameAck:
				w.ack(fr.seq)
			case frameLeave:
				w.message(fr.seq, &payload{kind: frameLeave})
			case frameData:
				w.message(fr.seq, newPayload(MemberID(fr.origin), MemberID(fr.dest), [][]byte{fr.payload}, len(fr.payload)))
			case frameView:
				v := &View{ID: fr.viewID}
				for _, m := range fr.members {
					v.Members = append(v.Members, MemberID(m))
				}
				w.message(fr.seq, &payload{kind: frameView, view: v})
			}
			var out bytes.Buffer
			if err := w.flush(&out); err != nil {
				t.Fatal(err)
			}
			var again frame
			if err := newDecoder(1000).read(bufio.NewReader(&out), &again); err != nil {
				t.Fatalf("re-encoded frame type %d does not decode: %v", fr.typ, err)
			}
			if again.typ != fr.typ || again.seq != fr.seq || !bytes.Equal(again.payload, fr.payload) {
				t.Fatalf("round trip changed the frame: %+v -> %+v", fr, again)
			}
		}
	})
}
