package msgstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/wire"
)

// recorder is a Transport that keeps what it was given.
type recorder struct {
	mu    sync.Mutex
	sends []sent
	fail  func(call int, ctx context.Context) error // optional
}

type sent struct {
	to    gcs.MemberID
	parts [][]byte
	ctx   context.Context
}

func (r *recorder) Multicast(ctx context.Context, parts ...[]byte) error {
	return r.Send(ctx, "", parts...)
}

func (r *recorder) Send(ctx context.Context, to gcs.MemberID, parts ...[]byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(len(r.sends), ctx); err != nil {
			return err
		}
	}
	r.sends = append(r.sends, sent{to: to, parts: parts, ctx: ctx})
	return nil
}

func (r *recorder) joined(i int) []byte { return bytes.Join(r.sends[i].parts, nil) }

func newSender(t testing.TB, tr msgstream.Transport, cfg msgstream.Config) *msgstream.Sender {
	t.Helper()
	s, err := msgstream.NewSender(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newReceiver(t testing.TB, cfg msgstream.Config) *msgstream.Receiver {
	t.Helper()
	r, err := msgstream.NewReceiver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func data(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestFragmentsAreTheSplittersFragments checks the zero-copy split over
// head and payload against the fragment package's own split of the whole
// encoding, for sizes around every boundary, and that a receiver gets the
// message back.
func TestFragmentsAreTheSplittersFragments(t *testing.T) {
	const maxFragment = 40 // body of 35: a store head (about 25 bytes) fits, a begin head may not
	cfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: maxFragment}}
	codec, err := wire.NewCodec(wire.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := fragment.NewSplitter(cfg.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []wire.Message
	for n := range 120 {
		msgs = append(msgs, &wire.Store{Epoch: 1, Seq: 2, OID: 3, Serial: 4, Data: data(n, uint64(n))})
		msgs = append(msgs, &wire.Begin{Epoch: 1, Seq: 2, User: data(n, 1), Description: []byte("d")})
	}
	msgs = append(msgs, &wire.Vote{Epoch: 1, Seq: 2}, &wire.Store{Epoch: 1, Seq: 2, OID: 1 << 60, Data: nil})
	for _, m := range msgs {
		rec := &recorder{}
		s := newSender(t, rec, cfg)
		if err := s.Send(t.Context(), "r#1", m); err != nil {
			t.Fatal(err)
		}
		enc, err := codec.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		frags, err := sp.Split(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.sends) != frags.Len() {
			t.Fatalf("%s of %d bytes: %d fragments sent, want %d", m.Method(), len(enc), len(rec.sends), frags.Len())
		}
		r := newReceiver(t, cfg)
		var got wire.Message
		for i, f := range frags.All() {
			if b := rec.joined(i); !bytes.Equal(b, f.AppendTo(nil)) {
				t.Fatalf("%s of %d bytes: fragment %d = %x, want %x", m.Method(), len(enc), i, b, f.AppendTo(nil))
			}
			if rec.sends[i].to != "r#1" {
				t.Fatalf("sent to %q", rec.sends[i].to)
			}
			if got, err = r.Receive(gcs.Event{Kind: gcs.EventMessage, Origin: "p#0", Data: rec.joined(i)}); err != nil {
				t.Fatal(err)
			}
			if (got != nil) != (i == frags.Len()-1) {
				t.Fatalf("fragment %d of %d returned message %v", i, frags.Len(), got)
			}
		}
		if again, _ := codec.Marshal(got); !bytes.Equal(again, enc) {
			t.Fatalf("%s: received %+v, sent %+v", m.Method(), got, m)
		}
		if c := s.Counters(); c != (msgstream.SendCounters{Messages: 1, Fragments: uint64(frags.Len()), Bytes: uint64(len(enc))}) {
			t.Fatalf("counters %+v", c)
		}
		if c := r.Counters(); c != (msgstream.ReceiveCounters{Messages: 1, Fragments: uint64(frags.Len()), Bytes: uint64(len(enc))}) {
			t.Fatalf("receive counters %+v", c)
		}
	}
}

// TestPayloadIsNotCopied checks that a store's data goes out as views of the
// caller's slice.
func TestPayloadIsNotCopied(t *testing.T) {
	rec := &recorder{}
	s := newSender(t, rec, msgstream.Config{Fragment: fragment.Config{MaxFragment: 1000}})
	payload := data(10_000, 1)
	if err := s.Send(t.Context(), "", &wire.Store{Epoch: 1, Seq: 1, OID: 1, Data: payload}); err != nil {
		t.Fatal(err)
	}
	aliased := 0
	for _, snt := range rec.sends {
		for _, p := range snt.parts {
			if len(p) > 0 && &p[len(p)-1] == &payload[len(payload)-1] {
				aliased++
			}
		}
	}
	if aliased != 1 {
		t.Fatalf("the payload's last byte is in %d sent buffers, want 1 (not copied)", aliased)
	}
}

func TestTooLargeIsRefusedBeforeSending(t *testing.T) {
	rec := &recorder{}
	// 65535 fragments of 1 body byte each.
	s := newSender(t, rec, msgstream.Config{Fragment: fragment.Config{MaxFragment: fragment.HeaderSize + 1}})
	big := &wire.Store{Epoch: 1, Seq: 1, OID: 1, Data: make([]byte, 70_000)}
	if err := s.Check(big); !errors.Is(err, msgstream.ErrTooLarge) || !errors.Is(err, fragment.ErrTooLarge) {
		t.Fatalf("Check = %v, want ErrTooLarge", err)
	}
	if err := s.Send(t.Context(), "", big); !errors.Is(err, msgstream.ErrTooLarge) {
		t.Fatalf("Send = %v, want ErrTooLarge", err)
	}
	if err := s.FitsFragments(fragment.MaxCount + 1); !errors.Is(err, msgstream.ErrTooLarge) {
		t.Fatalf("FitsFragments = %v", err)
	}
	if err := s.FitsFragments(fragment.MaxCount); err != nil {
		t.Fatalf("FitsFragments(MaxCount) = %v", err)
	}
	// Beyond a wire limit.
	huge := &wire.Store{Epoch: 1, Seq: 1, OID: 1, Data: make([]byte, wire.DefaultMaxDataLen+1)}
	s2 := newSender(t, rec, msgstream.Config{})
	if err := s2.Check(huge); !errors.Is(err, msgstream.ErrTooLarge) || !errors.Is(err, wire.ErrTooLarge) {
		t.Fatalf("Check = %v, want wire.ErrTooLarge", err)
	}
	if err := s2.Send(t.Context(), "", huge); !errors.Is(err, msgstream.ErrTooLarge) {
		t.Fatalf("Send = %v", err)
	}
	if len(rec.sends) != 0 || s.Counters() != (msgstream.SendCounters{}) {
		t.Fatalf("%d fragments sent, counters %+v", len(rec.sends), s.Counters())
	}
	if err := s.Check(&wire.Vote{Epoch: 1, Seq: 1}); err != nil {
		t.Fatalf("Check(vote) = %v", err)
	}
}

// TestCancelAfterFirstFragmentSendsTheRest: a context that ends mid-message
// must not cut the message short, which would break the stream.
func TestCancelAfterFirstFragmentSendsTheRest(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rec := &recorder{fail: func(call int, ctx context.Context) error {
		if call == 1 {
			cancel()
		}
		return ctx.Err()
	}}
	s := newSender(t, rec, msgstream.Config{Fragment: fragment.Config{MaxFragment: 100}})
	if err := s.Send(ctx, "", &wire.Store{Epoch: 1, Data: make([]byte, 1000)}); err != nil {
		t.Fatal(err)
	}
	if len(rec.sends) != 11 {
		t.Fatalf("%d fragments sent, want 11", len(rec.sends))
	}
	if err := s.Send(ctx, "", &wire.Vote{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with an ended context = %v", err)
	}
}

func TestNewSenderAndReceiverValidate(t *testing.T) {
	bad := msgstream.Config{Fragment: fragment.Config{MaxFragment: 3}}
	if _, err := msgstream.NewSender(&recorder{}, bad); err == nil {
		t.Fatal("NewSender accepted MaxFragment 3")
	}
	if _, err := msgstream.NewReceiver(bad); err == nil {
		t.Fatal("NewReceiver accepted MaxFragment 3")
	}
	if _, err := msgstream.NewSender(nil, msgstream.Config{}); err == nil {
		t.Fatal("NewSender accepted a nil transport")
	}
}

// TestProtocolErrors feeds bad fragment sequences and bad messages.
func TestProtocolErrors(t *testing.T) {
	cfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: 20}}
	rec := &recorder{}
	s := newSender(t, rec, cfg)
	if err := s.Send(t.Context(), "", &wire.Store{Epoch: 1, Data: make([]byte, 40)}); err != nil {
		t.Fatal(err)
	}
	frag := func(i int) gcs.Event {
		return gcs.Event{Kind: gcs.EventMessage, Origin: "bad#3", Data: rec.joined(i)}
	}
	garbage := append([]byte{fragment.Version, 0, 0, 0, 1}, "not cbor"...)
	cases := []struct {
		name   string
		events []gcs.Event
		want   error
	}{
		{"gap", []gcs.Event{frag(0), frag(2)}, fragment.ErrSequence},
		{"continuation first", []gcs.Event{frag(1)}, fragment.ErrSequence},
		{"truncated", []gcs.Event{{Kind: gcs.EventMessage, Origin: "bad#3", Data: []byte{1, 0}}}, fragment.ErrTruncated},
		{"bad wire", []gcs.Event{{Kind: gcs.EventMessage, Origin: "bad#3", Data: garbage}}, wire.ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, cfg)
			var err error
			for _, ev := range tc.events {
				var m wire.Message
				if m, err = r.Receive(ev); m != nil {
					t.Fatalf("returned %+v", m)
				}
			}
			var pe *msgstream.ProtocolError
			if !errors.Is(err, msgstream.ErrProtocol) || !errors.Is(err, tc.want) || !errors.As(err, &pe) || pe.Origin != "bad#3" {
				t.Fatalf("err = %v, want a protocol error from bad#3 wrapping %v", err, tc.want)
			}
			c := r.Counters()
			if c.FragmentErrors+c.ProtocolErrors != 1 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

// TestViewAndNoticeResetStreams: a half message from an origin that left
// the view, or from before a session notice, is forgotten.
func TestViewAndNoticeResetStreams(t *testing.T) {
	cfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: 20}}
	rec := &recorder{}
	s := newSender(t, rec, cfg)
	if err := s.Send(t.Context(), "", &wire.Store{Epoch: 1, Data: make([]byte, 40)}); err != nil {
		t.Fatal(err)
	}
	n := len(rec.sends)
	frag := func(origin gcs.MemberID, i int) gcs.Event {
		return gcs.Event{Kind: gcs.EventMessage, Origin: origin, Data: rec.joined(i)}
	}
	for _, reset := range []gcs.Event{
		{Kind: gcs.EventView, View: gcs.View{ID: 2, Members: []gcs.MemberID{"p#0", "b#2"}}},
		{Kind: gcs.EventNotice, Err: gcs.ErrRemoved},
	} {
		r := newReceiver(t, cfg)
		for _, ev := range []gcs.Event{frag("a#1", 0), frag("b#2", 0), reset} {
			if m, err := r.Receive(ev); m != nil || err != nil {
				t.Fatalf("%v, %v", m, err)
			}
		}
		// a#1 starts over cleanly after either reset.
		var got wire.Message
		for i := range n {
			m, err := r.Receive(frag("a#1", i))
			if err != nil {
				t.Fatalf("after %v: %v", reset.Kind, err)
			}
			got = m
		}
		if got == nil {
			t.Fatal("no message")
		}
		// b#2 continues only if the reset kept it (a view containing it).
		_, err := r.Receive(frag("b#2", 1))
		if (err == nil) != (reset.Kind == gcs.EventView) {
			t.Fatalf("after %v, b#2's continuation gave %v", reset.Kind, err)
		}
	}
}

// cluster is a coordinator and one member on an in-memory network.
type cluster struct {
	coord, member *gcs.Group
}

func newCluster(t *testing.T, maxMessage int) *cluster {
	t.Helper()
	network, err := memtransport.NewNetwork(memtransport.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string, seed uint64) *gcs.Node {
		layer, err := network.Listen(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := gcs.DefaultConfig(name)
		cfg.MaxMessage = maxMessage
		cfg.Rand = rand.New(rand.NewPCG(seed, 1))
		cfg.ReconnectMin = 5 * time.Millisecond
		cfg.ReconnectMax = 50 * time.Millisecond
		n, err := gcs.NewNode(cfg, layer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p, r := node("p", 1), node("r", 2)
	t.Cleanup(func() {
		r.Close()
		p.Close()
		network.Close()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	coord, err := p.Create(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	member, err := r.Join(ctx, "g", "p")
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{coord: coord, member: member}
}

// receive returns the next n messages on g, failing on any error and after
// a generous time bound.
func receive(t *testing.T, g *gcs.Group, r *msgstream.Receiver, n int) []wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out []wire.Message
	for len(out) < n {
		ev, err := g.Receive(ctx)
		if err != nil {
			t.Fatalf("receive: %v (after %d messages)", err, len(out))
		}
		m, err := r.Receive(ev)
		if err != nil {
			t.Fatal(err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// TestOverGCS sends objects of 0 bytes, around the fragment limit, and of
// several MiB from a coordinator to a member, by multicast and unicast.
func TestOverGCS(t *testing.T) {
	const maxFragment = 4096
	c := newCluster(t, maxFragment)
	cfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: maxFragment}}
	s := newSender(t, c.coord, cfg)
	r := newReceiver(t, cfg)
	body := maxFragment - fragment.HeaderSize
	// The store head is 6 to 25 bytes; sizes around one and two bodies
	// minus and plus the head cover every boundary.
	var sizes []int
	for _, base := range []int{0, body, 2 * body} {
		for d := -30; d <= 2; d++ {
			if base+d >= 0 {
				sizes = append(sizes, base+d)
			}
		}
	}
	sizes = append(sizes, 3<<20+17)
	var want []wire.Message
	for i, n := range sizes {
		m := &wire.Store{Epoch: 7, Seq: uint64(i + 1), OID: uint64(i), Serial: 1, Data: data(n, uint64(i))}
		to := gcs.MemberID("")
		if i%2 == 1 {
			to = c.member.Self()
		}
		if err := s.Send(t.Context(), to, m); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		want = append(want, m)
	}
	got := receive(t, c.member, r, len(want))
	for i := range want {
		w, g := want[i].(*wire.Store), got[i].(*wire.Store)
		if g.Seq != w.Seq || g.OID != w.OID || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("message %d: got seq %d oid %d %d bytes, want seq %d oid %d %d bytes", i, g.Seq, g.OID, len(g.Data), w.Seq, w.OID, len(w.Data))
		}
	}
	if sc, rc := s.Counters(), r.Counters(); sc.Messages != uint64(len(want)) || sc.Fragments != rc.Fragments || sc.Bytes != rc.Bytes {
		t.Fatalf("send counters %+v, receive counters %+v", sc, rc)
	}
}

// TestConcurrentSendersDoNotInterleave sends multi-fragment messages from
// many goroutines through one Sender; the receiver's strict reassembly
// would fail on any interleaving.
func TestConcurrentSendersDoNotInterleave(t *testing.T) {
	const maxFragment, senders, each = 1024, 8, 20
	c := newCluster(t, maxFragment)
	cfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: maxFragment}}
	s := newSender(t, c.coord, cfg)
	r := newReceiver(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m := &wire.Store{Epoch: 1, Seq: uint64(g), OID: uint64(i), Data: bytes.Repeat([]byte{byte(g)}, 3000+i*g)}
				if err := s.Send(t.Context(), "", m); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	got := receive(t, c.member, r, senders*each)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	next := make([]uint64, senders)
	for _, m := range got {
		st := m.(*wire.Store)
		if st.OID != next[st.Seq] || len(st.Data) != 3000+int(st.OID*st.Seq) || st.Data[0] != byte(st.Seq) {
			t.Fatalf("sender %d: message %d of %d bytes, want message %d", st.Seq, st.OID, len(st.Data), next[st.Seq])
		}
		next[st.Seq]++
	}
}

// TestMalformedFromAMemberNamesIt: a member that sends a broken fragment
// sequence is named by the coordinator's receiver.
func TestMalformedFromAMemberNamesIt(t *testing.T) {
	c := newCluster(t, 1024)
	r := newReceiver(t, msgstream.Config{Fragment: fragment.Config{MaxFragment: 1024}})
	// Offset 1 of 2 with no message in progress.
	if err := c.member.Multicast(t.Context(), []byte{fragment.Version, 0, 1, 0, 2}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		ev, err := c.coord.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Receive(ev)
		if err == nil {
			continue
		}
		var pe *msgstream.ProtocolError
		if !errors.As(err, &pe) || pe.Origin != c.member.Self() || !errors.Is(err, fragment.ErrSequence) {
			t.Fatalf("err = %v, want a sequence error from %s", err, c.member.Self())
		}
		if want := fmt.Sprintf("from %s", c.member.Self()); !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("error %q does not name the origin", err)
		}
		return
	}
}
