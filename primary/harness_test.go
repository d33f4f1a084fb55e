package primary

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/memtransport"
	"github.com/repld/repld/internal/msgstream"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/wire"
	"go.uber.org/zap/zaptest"
)

// waitBound guards waits on conditions; it is not a timing assertion.
const waitBound = 20 * time.Second

// net is an in-memory network with a primary node at address "p".
type testNet struct {
	t   *testing.T
	net *memtransport.Network
}

func newTestNet(t *testing.T) *testNet {
	n, err := memtransport.NewNetwork(memtransport.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &testNet{t: t, net: n}
}

// node starts a gcs node at addr, closed at the end of the test.
func (n *testNet) node(addr string) *gcs.Node {
	n.t.Helper()
	layer, err := n.net.Listen(addr)
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := gcs.DefaultConfig(addr)
	cfg.HeartbeatInterval = 20 * time.Millisecond
	cfg.FailureTimeout = 400 * time.Millisecond
	cfg.ReconnectMin = 5 * time.Millisecond
	cfg.ReconnectMax = 50 * time.Millisecond
	node, err := gcs.NewNode(cfg, layer)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { node.Close() })
	return node
}

// openPrimary opens a Primary over store on a new node "p" (the node of a
// previous primary must be closed first).
func (n *testNet) openPrimary(store storage.Storage, dir string, mod func(*Config)) (*Primary, *gcs.Node) {
	n.t.Helper()
	node := n.node("p")
	cfg := Config{
		Name: "p", DataDir: dir, Store: store, Node: node,
		HeartbeatInterval: 50 * time.Millisecond, Logger: zaptest.NewLogger(n.t),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := Open(n.t.Context(), cfg)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { p.Close() })
	return p, node
}

func newMem(t *testing.T) storage.Storage {
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitFor polls cond until it holds, failing the test after waitBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// replicaState returns the registry entry of name, if any.
func replicaState(p *Primary, name string) (ReplicaStatus, bool) {
	for _, r := range p.Status().Replicas {
		if r.Name == name {
			return r, true
		}
	}
	return ReplicaStatus{}, false
}

// gotTxn is a transaction as a fake replica received it.
type gotTxn struct {
	tid     storage.TID
	chain   storage.Checksum
	meta    storage.TxnMeta
	digests []storage.RecordDigest
	replay  bool
}

// fake is a minimal replica speaking the protocol directly: it records the
// transactions it receives (replays, and live ones from next_seq), checks
// the stream's rules and acknowledges finishes if told to.
type fake struct {
	t      *testing.T
	name   string
	group  *gcs.Group
	sender *msgstream.Sender
	to     gcs.MemberID
	ack    bool

	mu       sync.Mutex
	live     bool
	nextSeq  uint64
	cur0     *gotTxn
	open     map[uint64]*gotTxn
	got      []gotTxn
	problems []string
	// methods lists the live transactions' messages, "method seq" each
	// (a txn that asks for a received acknowledgement says so).
	methods []string
	cancel  context.CancelFunc
	done    chan struct{}
}

// join joins a fake replica named name at node address addr; it says
// hello with (epoch, last, chain) and acknowledges finishes if ack.
func (n *testNet) join(name string, ack bool) *fake {
	n.t.Helper()
	node := n.node(name)
	ctx, cancel := context.WithTimeout(n.t.Context(), waitBound)
	defer cancel()
	g, err := node.Join(ctx, DefaultGroup, "p")
	if err != nil {
		n.t.Fatal(err)
	}
	mcfg := msgstream.Config{Fragment: fragment.Config{MaxFragment: fragment.DefaultMaxFragment}}
	s, err := msgstream.NewSender(g, mcfg)
	if err != nil {
		n.t.Fatal(err)
	}
	r, err := msgstream.NewReceiver(mcfg)
	if err != nil {
		n.t.Fatal(err)
	}
	ev, err := g.Receive(ctx) // the view that admitted it; the coordinator is listed first
	if err != nil || ev.Kind != gcs.EventView || len(ev.View.Members) == 0 {
		n.t.Fatalf("first event after join: %+v, %v", ev, err)
	}
	f := &fake{t: n.t, name: name, group: g, sender: s, to: ev.View.Members[0], ack: ack,
		open: map[uint64]*gotTxn{}, done: make(chan struct{})}
	var lctx context.Context
	lctx, f.cancel = context.WithCancel(context.Background())
	go f.loop(lctx, r)
	n.t.Cleanup(f.stop)
	return f
}

func (f *fake) stop() {
	f.cancel()
	f.group.Close()
	<-f.done
}

func (f *fake) hello(epoch uint64, last storage.TID, chain storage.Checksum) {
	f.t.Helper()
	if err := f.sender.Send(f.t.Context(), f.to, &wire.Hello{Node: f.name, Epoch: epoch, LastTID: uint64(last), Chain: wire.Chain(chain)}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fake) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *fake) loop(ctx context.Context, r *msgstream.Receiver) {
	defer close(f.done)
	for {
		ev, err := f.group.Receive(ctx)
		if err != nil {
			return
		}
		m, err := r.Receive(ev)
		if err != nil {
			f.mu.Lock()
			f.problem("receive: %v", err)
			f.mu.Unlock()
			continue
		}
		if m != nil {
			f.apply(m)
		}
	}
}

func (f *fake) apply(m wire.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ackTID uint64
	if seq := liveSeq(m); seq != 0 {
		method := fmt.Sprintf("%s %d", m.Method(), seq)
		if t, ok := m.(*wire.Txn); ok && t.WantsReceived() {
			method += " wants received"
		}
		f.methods = append(f.methods, method)
	}
	switch m := m.(type) {
	case *wire.Begin:
		t := &gotTxn{meta: storage.TxnMeta{User: m.User, Description: m.Description, Extension: m.Extension}}
		switch {
		case m.Seq == 0:
			if f.cur0 != nil {
				f.problem("replay begin inside a replay")
			}
			t.replay = true
			f.cur0 = t
		case f.live && m.Seq >= f.nextSeq:
			f.open[m.Seq] = t
		}
	case *wire.Store:
		t := f.cur0
		if m.Seq != 0 {
			t = f.open[m.Seq]
			if t == nil && f.live && m.Seq >= f.nextSeq {
				f.problem("store for seq %d without begin", m.Seq)
			}
		}
		if t != nil {
			// A later store of an OID replaces the earlier one.
			t.digests = slices.DeleteFunc(t.digests, func(d storage.RecordDigest) bool { return d.OID == storage.OID(m.OID) })
			t.digests = append(t.digests, storage.DigestRecord(storage.OID(m.OID), m.Data))
		}
	case *wire.Finish:
		t := f.cur0
		if m.Seq != 0 {
			t = f.open[m.Seq]
			delete(f.open, m.Seq)
			if t == nil && f.live && m.Seq >= f.nextSeq {
				f.problem("finish for seq %d without begin", m.Seq)
			}
		} else {
			f.cur0 = nil
		}
		if t != nil {
			t.tid, t.chain = storage.TID(m.TID), storage.Checksum(m.Chain)
			f.got = append(f.got, *t)
			ackTID = m.TID
		}
	case *wire.Abort:
		delete(f.open, m.Seq)
	case *wire.Replay:
		if f.cur0 != nil {
			f.problem("replay message inside a replay")
		}
		recs, err := m.DecodeRecords()
		if err != nil {
			f.problem("replay message: %v", err)
			break
		}
		t := gotTxn{tid: storage.TID(m.TID), chain: storage.Checksum(m.Chain), replay: true,
			meta: storage.TxnMeta{User: m.User, Description: m.Description, Extension: m.Extension}}
		for _, r := range recs {
			t.digests = append(t.digests, storage.DigestRecord(storage.OID(r.OID), r.Data))
		}
		f.got = append(f.got, t)
		ackTID = m.TID
	case *wire.Txn:
		if !f.live || m.Seq < f.nextSeq {
			break // replayed after its finish
		}
		recs, err := m.DecodeRecords()
		if err != nil {
			f.problem("txn message: %v", err)
			break
		}
		t := gotTxn{tid: storage.TID(m.TID), chain: storage.Checksum(m.Chain),
			meta: storage.TxnMeta{User: m.User, Description: m.Description, Extension: m.Extension}}
		for _, r := range recs {
			t.digests = slices.DeleteFunc(t.digests, func(d storage.RecordDigest) bool { return d.OID == storage.OID(r.OID) })
			t.digests = append(t.digests, storage.DigestRecord(storage.OID(r.OID), r.Data))
		}
		f.got = append(f.got, t)
		ackTID = m.TID
	case *wire.Live:
		if f.cur0 != nil {
			f.problem("live inside a replay")
		}
		f.live, f.nextSeq = true, m.NextSeq
	}
	if ackTID != 0 && f.ack {
		_ = f.sender.Send(context.Background(), f.to, &wire.Received{TID: ackTID})
		_ = f.sender.Send(context.Background(), f.to, &wire.Applied{TID: ackTID})
	}
}

// liveSeq returns the seq of a live transaction's message, else 0.
func liveSeq(m wire.Message) uint64 {
	switch m := m.(type) {
	case *wire.Begin:
		return m.Seq
	case *wire.Store:
		return m.Seq
	case *wire.Vote:
		return m.Seq
	case *wire.Finish:
		return m.Seq
	case *wire.Abort:
		return m.Seq
	case *wire.Txn:
		return m.Seq
	}
	return 0
}

// sentMethods returns the live transactions' messages received so far.
func (f *fake) sentMethods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.methods)
}

// check verifies that the fake received exactly the primary's history, in
// order, with chains it can recompute.
func (f *fake) check(p storage.Storage) {
	f.t.Helper()
	want := history(f.t, p)
	waitFor(f.t, f.name+" to receive everything", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.got) >= len(want)
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) > 0 {
		f.t.Fatalf("%s saw protocol problems: %v", f.name, f.problems)
	}
	if len(f.got) != len(want) {
		f.t.Fatalf("%s received %d transactions; the primary has %d", f.name, len(f.got), len(want))
	}
	var prev storage.Checksum
	for i, g := range f.got {
		if g.tid != want[i].TID || g.chain != want[i].Chain {
			f.t.Fatalf("%s: transaction %d is %s (chain %s); primary has %s (chain %s)", f.name, i, g.tid, g.chain, want[i].TID, want[i].Chain)
		}
		if c := storage.NextChain(prev, g.tid, g.meta, g.digests); c != g.chain {
			f.t.Fatalf("%s: transaction %s: received data gives chain %s, finish says %s", f.name, g.tid, c, g.chain)
		}
		prev = g.chain
	}
}

// history returns every committed transaction of s.
func history(t *testing.T, s storage.Storage) []storage.Transaction {
	t.Helper()
	// Not t.Context(): checks also run from cleanups, after it ended.
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []storage.Transaction
	for {
		tx, err := it.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return out
		}
		out = append(out, *tx)
	}
}

// commitOne commits one object in one transaction.
func commitOne(ctx context.Context, s storage.Storage, oid storage.OID, serial storage.TID, data []byte) (storage.Commit, error) {
	txn, err := s.Begin(ctx, storage.TxnMeta{User: []byte("test")})
	if err != nil {
		return storage.Commit{}, err
	}
	if err := txn.Store(ctx, oid, serial, data); err != nil {
		_ = txn.Abort(ctx)
		return storage.Commit{}, err
	}
	if err := txn.Vote(ctx); err != nil {
		return storage.Commit{}, err
	}
	return txn.Finish(ctx)
}
