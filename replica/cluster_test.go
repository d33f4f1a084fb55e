package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/storagetest"
	"github.com/repld/repld/wire"
)

// wait bounds every wait of these tests; it is a guard against a hang, not
// a timing assertion.
const wait = 20 * time.Second

// network is an in-memory network for gcs nodes.
type network struct {
	t    *testing.T
	net  *memtransport.Network
	seed uint64
}

func newNetwork(t *testing.T) *network {
	t.Helper()
	n, err := memtransport.NewNetwork(memtransport.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &network{t: t, net: n}
}

// node starts a gcs node at addr with short timeouts; the test closes it.
func (n *network) node(addr string) *gcs.Node {
	n.t.Helper()
	layer, err := n.net.Listen(addr)
	if err != nil {
		n.t.Fatal(err)
	}
	n.seed++
	cfg := gcs.DefaultConfig(addr)
	cfg.HeartbeatInterval = 20 * time.Millisecond
	cfg.FailureTimeout = 300 * time.Millisecond
	cfg.ReconnectMin = 5 * time.Millisecond
	cfg.ReconnectMax = 50 * time.Millisecond
	cfg.Rand = rand.New(rand.NewPCG(n.seed, 3))
	node, err := gcs.NewNode(cfg, layer)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { node.Close() })
	return node
}

// fakePrimary is a scripted primary: it answers hello with a replay of its
// source store and live, and sends live transactions on request. Its
// turn mutex plays the primary's turnstile: a catch-up and a live
// transaction never interleave.
type fakePrimary struct {
	t      *testing.T
	src    *source
	node   *gcs.Node
	group  *gcs.Group
	sender *msgstream.Sender
	cancel context.CancelFunc
	done   chan struct{}

	turn    sync.Mutex
	nextSeq uint64

	mu       sync.Mutex
	cond     *sync.Cond
	received []wire.Message // from replicas, in order
	members  map[string]gcs.MemberID
	errs     []error
}

func newFakePrimary(t *testing.T, n *network, src *source) *fakePrimary {
	t.Helper()
	p := &fakePrimary{t: t, src: src, node: n.node("primary"), nextSeq: 1, members: map[string]gcs.MemberID{}, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	g, err := p.node.Create(t.Context(), DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	p.group = g
	if p.sender, err = msgstream.NewSender(g, msgstream.Config{}); err != nil {
		t.Fatal(err)
	}
	recv, err := msgstream.NewReceiver(msgstream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.loop(ctx, recv)
	t.Cleanup(p.stop)
	return p
}

func (p *fakePrimary) stop() {
	p.cancel()
	<-p.done
	p.node.Close()
}

func (p *fakePrimary) loop(ctx context.Context, recv *msgstream.Receiver) {
	defer close(p.done)
	for {
		ev, err := p.group.Receive(ctx)
		if err != nil {
			return
		}
		m, err := recv.Receive(ev)
		if err == nil && m == nil {
			continue
		}
		p.mu.Lock()
		if err == nil {
			p.received = append(p.received, m)
		}
		h, isHello := m.(*wire.Hello)
		if isHello {
			p.members[h.Node] = ev.Origin
		}
		p.mu.Unlock()
		if isHello {
			err = p.catchUp(ctx, ev.Origin, h)
		}
		p.mu.Lock()
		if err != nil {
			p.errs = append(p.errs, err)
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// catchUp replays everything after the replica's last TID, then sends live.
func (p *fakePrimary) catchUp(ctx context.Context, to gcs.MemberID, h *wire.Hello) error {
	p.turn.Lock()
	defer p.turn.Unlock()
	last := storage.TID(h.LastTID)
	for _, x := range transactions(p.t, p.src.s) {
		if x.TID <= last {
			continue
		}
		for _, m := range p.src.replay(x) {
			if err := p.sender.Send(ctx, to, m); err != nil {
				return err
			}
		}
		last = x.TID
	}
	return p.sender.Send(ctx, to, &wire.Live{Epoch: p.src.epoch, NextSeq: p.nextSeq, TID: uint64(last)})
}

// commit commits ws on the source and multicasts it as a live transaction.
func (p *fakePrimary) commit(desc string, ws ...write) storage.TID {
	p.t.Helper()
	p.turn.Lock()
	defer p.turn.Unlock()
	x, serials := p.src.commit(desc, ws...)
	stores, vote, finish := p.src.live(p.nextSeq, x, serials)
	p.nextSeq++
	for _, m := range append(stores, vote, finish) {
		if err := p.sender.Send(p.t.Context(), "", m); err != nil {
			p.t.Fatal(err)
		}
	}
	return x.TID
}

// send multicasts raw messages.
func (p *fakePrimary) send(ms ...wire.Message) {
	p.t.Helper()
	for _, m := range ms {
		if err := p.sender.Send(p.t.Context(), "", m); err != nil {
			p.t.Fatal(err)
		}
	}
}

// waitFor waits until a received message satisfies ok and returns it.
func (p *fakePrimary) waitFor(what string, ok func(wire.Message) bool) wire.Message {
	p.t.Helper()
	deadline := time.AfterFunc(wait, func() {
		p.mu.Lock()
		p.errs = append(p.errs, fmt.Errorf("timed out waiting for %s", what))
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer deadline.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for seen := 0; ; {
		for ; seen < len(p.received); seen++ {
			if ok(p.received[seen]) {
				return p.received[seen]
			}
		}
		if len(p.errs) > 0 {
			p.t.Fatalf("waiting for %s: %v", what, p.errs)
		}
		p.cond.Wait()
	}
}

// hellos counts the hellos received from node.
func (p *fakePrimary) hellos(node string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.received {
		if h, ok := m.(*wire.Hello); ok && h.Node == node {
			n++
		}
	}
	return n
}

// noClose lets a test reopen a replica on the same in-memory store.
type noClose struct{ storage.Storage }

func (noClose) Close() error { return nil }

// openReplica opens a replica named name on its own node.
func openReplica(t *testing.T, n *network, name, dir string, store storage.Storage) *Replica {
	t.Helper()
	node := n.node(name + fmt.Sprint(n.seed))
	r, err := Open(t.Context(), Config{
		Name: name, DataDir: dir, Store: store, Node: node, Primary: "primary",
		JoinBackoffMin: 5 * time.Millisecond, JoinBackoffMax: 50 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func waitApplied(t *testing.T, r *Replica, tid storage.TID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := r.WaitFor(ctx, tid); err != nil {
		t.Fatalf("WaitFor(%s): %v (status %+v)", tid, err, r.Status())
	}
}

// waitState polls the replica's state; the poll is bounded by wait.
func waitState(t *testing.T, r *Replica, want State) {
	t.Helper()
	for start := time.Now(); r.Status().State != want; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > wait {
			t.Fatalf("state %s, want %s", r.Status().State, want)
		}
	}
}

func isFailure(m wire.Message) bool { _, ok := m.(*wire.Failure); return ok }

func TestFollowsThePrimary(t *testing.T) {
	n := newNetwork(t)
	src := newSource(t, 1)
	big := string(make([]byte, 250_000)) // three fragments
	src.commit("one", write{1, "a"}, write{2, big})
	src.commit("two", write{1, "b"}, write{3, ""})
	store := newSource(t, 0).s
	// The replica starts before the primary exists and keeps trying.
	r := openReplica(t, n, "r1", t.TempDir(), store)
	p := newFakePrimary(t, n, src)
	waitState(t, r, StateLive)
	last := p.commit("three", write{2, big + "x"}, write{4, "d"})
	waitApplied(t, r, last)
	sameHistory(t, src.s, store)
	p.waitFor("applied "+last.String(), func(m wire.Message) bool {
		a, ok := m.(*wire.Applied)
		return ok && storage.TID(a.TID) == last
	})
	st := r.Status()
	if st.Role != "replica" || st.Name != "r1" || st.LastTID != last || st.Epoch != 1 || st.Counters.Applied != 3 ||
		st.Counters.MessagesReceived == 0 || st.Counters.BytesReceived < 500_000 || st.Quarantine != nil {
		t.Fatalf("status %+v", st)
	}
	if b, err := json.Marshal(st); err != nil || !strings.Contains(string(b), `"last_tid":"`+last.String()+`"`) || !strings.Contains(string(b), `"state":"live"`) {
		t.Fatalf("status JSON %s, %v", b, err)
	}
	// A heartbeat tells the replica how far behind it is.
	p.send(&wire.Heartbeat{Epoch: 1, LastTID: uint64(last + 1)})
	for start := time.Now(); r.Status().PrimaryLastTID != last+1; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > wait {
			t.Fatal("heartbeat not seen")
		}
	}
}

// TestRejoinsARestartedPrimary: a primary that comes back as a new process
// gets a new hello, and the replica catches up from what it has.
func TestRejoinsARestartedPrimary(t *testing.T) {
	n := newNetwork(t)
	src := newSource(t, 1)
	store := newSource(t, 0).s
	p := newFakePrimary(t, n, src)
	r := openReplica(t, n, "r1", t.TempDir(), store)
	waitApplied(t, r, p.commit("one", write{1, "a"}))
	p.stop()
	src.commit("while away", write{1, "b"})
	p2 := newFakePrimary(t, n, src)
	last := p2.commit("two", write{2, "c"})
	waitApplied(t, r, last)
	sameHistory(t, src.s, store)
	if p2.hellos("r1") != 1 {
		t.Fatalf("%d hellos to the new primary", p2.hellos("r1"))
	}
}

func TestQuarantineSurvivesReopen(t *testing.T) {
	n := newNetwork(t)
	src := newSource(t, 1)
	p := newFakePrimary(t, n, src)
	dir := t.TempDir()
	store := newFaultStore(t)
	r := openReplica(t, n, "r1", dir, noClose{store})
	waitApplied(t, r, p.commit("one", write{1, "a"}))
	store.failFinish(errors.New("no space left on device"))
	bad := p.commit("two", write{1, "b"})
	f := p.waitFor("failure", isFailure).(*wire.Failure)
	if f.Code != wire.FailureStorage || storage.TID(f.TID) != bad {
		t.Fatalf("failure %+v", f)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := r.WaitFor(ctx, bad); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("WaitFor = %v, want ErrQuarantined", err)
	}
	waitState(t, r, StateQuarantined)
	if q := r.Status().Quarantine; q == nil || q.TID != bad || q.Code != "storage" {
		t.Fatalf("quarantine %+v", q)
	}
	r.Close()
	store.clear()

	// Reopened, it stays quarantined: it says hello, repeats its failure,
	// and applies nothing.
	r = openReplica(t, n, "r1", dir, noClose{store})
	for start := time.Now(); p.hellos("r1") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > wait {
			t.Fatal("no second hello")
		}
	}
	if st := r.Status(); st.State != StateQuarantined || st.Quarantine == nil || st.Quarantine.TID != bad {
		t.Fatalf("status after reopen %+v", st)
	}
	p.commit("three", write{2, "c"})
	if err := r.WaitFor(ctx, bad); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("WaitFor = %v, want ErrQuarantined", err)
	}
	if last, _ := store.LastTransaction(ctx); last >= bad {
		t.Fatal("a quarantined replica applied a transaction")
	}
	r.Close()

	// Released, it catches up.
	if err := ClearQuarantine(dir); err != nil {
		t.Fatal(err)
	}
	r = openReplica(t, n, "r1", dir, noClose{store})
	waitApplied(t, r, p.commit("four", write{3, "d"}))
	sameHistory(t, src.s, store)
}

func TestOlderEpochRefused(t *testing.T) {
	n := newNetwork(t)
	src := newSource(t, 2)
	p := newFakePrimary(t, n, src)
	dir := t.TempDir()
	store := newSource(t, 0).s
	r := openReplica(t, n, "r1", dir, noClose{store})
	first := p.commit("one", write{1, "a"})
	waitApplied(t, r, first)
	// A deposed primary's messages (epoch 1) are refused.
	p.send(&wire.Begin{Epoch: 1, Seq: 50}, &wire.Store{Epoch: 1, Seq: 50, OID: 1, Data: []byte("stale")},
		&wire.Vote{Epoch: 1, Seq: 50}, &wire.Finish{Epoch: 1, Seq: 50, TID: uint64(first) + 1000})
	last := p.commit("two", write{2, "b"})
	waitApplied(t, r, last)
	st := r.Status()
	if st.Counters.RefusedEpoch != 4 || st.Epoch != 2 || st.Quarantine != nil {
		t.Fatalf("status %+v", st)
	}
	if data, _, err := store.Load(t.Context(), 1); err != nil || string(data) != "a" {
		t.Fatalf("object 1 = %q, %v", data, err)
	}
	// The epoch is persisted: the next hello carries it.
	r.Close()
	openReplica(t, n, "r1", dir, noClose{store})
	h := p.waitFor("second hello", func(m wire.Message) bool {
		h, ok := m.(*wire.Hello)
		return ok && h.LastTID == uint64(last)
	}).(*wire.Hello)
	if h.Epoch != 2 {
		t.Fatalf("hello epoch %d, want 2", h.Epoch)
	}
}

func TestProtocolErrorQuarantines(t *testing.T) {
	n := newNetwork(t)
	p := newFakePrimary(t, n, newSource(t, 1))
	dir := t.TempDir()
	r := openReplica(t, n, "r1", dir, newSource(t, 0).s)
	waitState(t, r, StateLive)
	// A continuation fragment with no message in progress.
	if err := p.group.Multicast(t.Context(), []byte{1, 0, 1, 0, 2}, []byte("x")); err != nil {
		t.Fatal(err)
	}
	f := p.waitFor("failure", isFailure).(*wire.Failure)
	if f.Code != wire.FailureProtocol {
		t.Fatalf("failure %+v", f)
	}
	waitState(t, r, StateQuarantined)
	if q, err := readMarker(dir); err != nil || q == nil || q.Code != "protocol" {
		t.Fatalf("marker %+v, %v", q, err)
	}
	if st := r.Status(); st.Counters.FragmentErrors != 1 {
		t.Fatalf("counters %+v", st.Counters)
	}
}

// replicate replays to replica name every transaction of the source
// after after, as a primary does for transactions a replica missed.
func (p *fakePrimary) replicate(name string, after storage.TID) error {
	p.turn.Lock()
	defer p.turn.Unlock()
	p.mu.Lock()
	to := p.members[name]
	p.mu.Unlock()
	for _, x := range transactions(p.t, p.src.s) {
		if x.TID <= after {
			continue
		}
		for _, m := range p.src.replay(x) {
			if err := p.sender.Send(p.t.Context(), to, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestReadViewConformance runs the read half of the conformance suite on
// the replica's view, fed by a scripted primary whose store is the writer.
func TestReadViewConformance(t *testing.T) {
	storagetest.RunReadOnly(t, storagetest.ReadOnlyHarness{
		Open: func(t *testing.T) (storage.Storage, storage.Storage, func(context.Context, storage.TID) error) {
			n := newNetwork(t)
			src := newSource(t, 1)
			p := newFakePrimary(t, n, src)
			r := openReplica(t, n, "r1", t.TempDir(), newSource(t, 0).s)
			waitState(t, r, StateLive)
			sync := func(ctx context.Context, tid storage.TID) error {
				if err := p.replicate("r1", r.Status().LastTID); err != nil {
					return err
				}
				return r.WaitFor(ctx, tid)
			}
			return src.s, r.ReadView(), sync
		},
	})
}
