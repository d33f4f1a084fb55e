package clientserver_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/wire"
)

const bound = 30 * time.Second

// rawClient speaks the protocol by hand.
type rawClient struct {
	t     *testing.T
	nc    net.Conn
	r     *bufio.Reader
	codec *wire.Codec
}

func start(t *testing.T, cfg clientserver.Config) (*clientserver.Server, storage.Storage) {
	t.Helper()
	if cfg.Store == nil {
		s, err := memstore.New(memstore.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		cfg.Store = s
	}
	srv, err := clientserver.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, srv.Storage()
}

func dial(t *testing.T, srv *clientserver.Server) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(bound))
	t.Cleanup(func() { _ = nc.Close() })
	c, _ := wire.NewCodec(wire.Config{})
	return &rawClient{t: t, nc: nc, r: bufio.NewReader(nc), codec: c}
}

func (c *rawClient) send(m wire.Message) {
	c.t.Helper()
	head, payload, err := clientproto.AppendFrame(c.codec, nil, m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.nc.Write(append(head, payload...)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) recv() (wire.Message, error) {
	b, err := clientproto.ReadFrame(c.r, wire.DefaultMaxMessageLen)
	if err != nil {
		return nil, err
	}
	return c.codec.Unmarshal(b)
}

func (c *rawClient) mustRecv() wire.Message {
	c.t.Helper()
	m, err := c.recv()
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// TestCommitAndInvalidate commits through the protocol: the committer and
// another connection receive the invalidation.
func TestCommitAndInvalidate(t *testing.T) {
	srv, _ := start(t, clientserver.Config{})
	a, b := dial(t, srv), dial(t, srv)
	b.send(&wire.CRole{ID: 1}) // b is subscribed once it got an answer
	if m, ok := b.mustRecv().(*wire.CRoleIs); !ok || m.Role != clientserver.RolePrimary {
		t.Fatalf("role answer %+v", m)
	}
	a.send(&wire.CBegin{ID: 1, Txn: 1})
	a.send(&wire.CStore{Txn: 1, OID: 7, Data: []byte("x")})
	a.send(&wire.CStore{Txn: 1, OID: 3, Data: []byte("y")})
	a.send(&wire.CVote{ID: 2, Txn: 1})
	a.send(&wire.CFinish{ID: 3, Txn: 1})
	var commit *wire.CCommit
	for commit == nil {
		switch m := a.mustRecv().(type) {
		case *wire.COK:
		case *wire.CCommit:
			commit = m
		case *wire.CInvalidate:
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	inv, ok := b.mustRecv().(*wire.CInvalidate)
	want := []byte{0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 7}
	if !ok || inv.TID != commit.TID || string(inv.OIDs) != string(want) {
		t.Fatalf("invalidation %+v; want TID %d and OIDs 3, 7", inv, commit.TID)
	}
}

// TestProtocolViolationClosesTheConnection sends garbage, then a store in
// no transaction: each is refused and the connection closed.
func TestProtocolViolationClosesTheConnection(t *testing.T) {
	srv, _ := start(t, clientserver.Config{})
	for name, frame := range map[string][]byte{
		"not cbor":       {0, 0, 0, 2, 0xff, 0xff},
		"replication":    mustFrame(t, &wire.Vote{Epoch: 1, Seq: 1}),
		"stray store":    mustFrame(t, &wire.CStore{Txn: 9, OID: 1}),
		"an answer kind": mustFrame(t, &wire.COK{ID: 1}),
	} {
		c := dial(t, srv)
		if _, err := c.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if m, ok := c.mustRecv().(*wire.CError); !ok || m.Code != wire.ClientErrProtocol {
			t.Fatalf("%s: answer %+v; want a protocol error", name, m)
		}
		if _, err := c.recv(); err == nil {
			t.Fatalf("%s: the connection stays open", name)
		}
	}
}

func mustFrame(t *testing.T, m wire.Message) []byte {
	c, _ := wire.NewCodec(wire.Config{})
	head, payload, err := clientproto.AppendFrame(c, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return append(head, payload...)
}

// TestBehind asks a node for a TID it never reaches.
func TestBehind(t *testing.T) {
	srv, _ := start(t, clientserver.Config{MaxWait: time.Millisecond})
	c := dial(t, srv)
	c.send(&wire.CLoad{ID: 1, OID: 1, AtLeast: 99})
	m, ok := c.mustRecv().(*wire.CError)
	if !ok || !errors.Is(clientproto.Error(m), clientproto.ErrBehind) {
		t.Fatalf("answer %+v; want ClientErrBehind", m)
	}
}

// TestNotifyingAndFollow announces commits made beside the server, by
// wrapping the store and by following it.
func TestNotifyingAndFollow(t *testing.T) {
	ctx := context.Background()
	store, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hub := clientserver.NewHub()
	commit := func(s storage.Storage, oid storage.OID) storage.TID {
		txn, _ := s.Begin(ctx, storage.TxnMeta{})
		_ = txn.Store(ctx, oid, 0, []byte("x"))
		if err := txn.Vote(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := txn.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c.TID
	}
	tid := commit(clientserver.Notifying(store, hub), 1)
	if hub.Last() != tid {
		t.Fatalf("hub at %s after a commit through Notifying at %s", hub.Last(), tid)
	}

	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		clientserver.Follow(fctx, hub, store, func(ctx context.Context, want storage.TID) error {
			for {
				last, err := store.LastTransaction(ctx)
				if err != nil || last >= want {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Millisecond):
				}
			}
		}, nil)
	})
	tid = commit(store, 2)
	wctx, wcancel := context.WithTimeout(ctx, bound)
	defer wcancel()
	if !hub.Wait(wctx, tid) {
		t.Fatalf("Follow never announced %s", tid)
	}
	cancel()
	wg.Wait()
}

// recvAnswer returns the next message on c other than an invalidation.
func (c *rawClient) recvAnswer() wire.Message {
	c.t.Helper()
	for {
		if m := c.mustRecv(); m.Method() != wire.MethodCInvalidate {
			return m
		}
	}
}

// TestVoteFinish commits in one request; a conflict answers as a failed
// vote would, forgets the transaction and releases the commit lock.
func TestVoteFinish(t *testing.T) {
	srv, store := start(t, clientserver.Config{})
	c := dial(t, srv)
	c.send(&wire.CBegin{Txn: 1})
	c.send(&wire.CStore{Txn: 1, OID: 7, Data: []byte("x")})
	c.send(&wire.CVoteFinish{ID: 2, Txn: 1})
	commit, ok := c.recvAnswer().(*wire.CCommit)
	if !ok || commit.ID != 2 || commit.TID == 0 {
		t.Fatalf("answer %+v; want a CCommit for request 2", commit)
	}
	data, serial, err := store.Load(context.Background(), 7)
	if err != nil || string(data) != "x" || uint64(serial) != commit.TID {
		t.Fatalf("Load(7) = %q, %s, %v; want \"x\" at %x", data, serial, err, commit.TID)
	}
	chain, err := store.Chain(context.Background(), serial)
	if err != nil || wire.Chain(chain) != commit.Chain {
		t.Fatalf("chain at %s = %x, %v; the answer says %x", serial, chain, err, commit.Chain)
	}

	c.send(&wire.CBegin{Txn: 2})
	c.send(&wire.CStore{Txn: 2, OID: 7, Serial: 0, Data: []byte("stale")})
	c.send(&wire.CVoteFinish{ID: 3, Txn: 2})
	e, ok := c.recvAnswer().(*wire.CError)
	if !ok || e.ID != 3 || e.Code != wire.ClientErrConflict || e.OID != 7 || e.Actual != commit.TID {
		t.Fatalf("answer %+v; want a conflict on 7 at %x", e, commit.TID)
	}
	c.send(&wire.CVote{ID: 4, Txn: 2})
	if e, ok := c.recvAnswer().(*wire.CError); !ok || e.ID != 4 || e.Code != wire.ClientErrTxnState {
		t.Fatalf("vote of the conflicting transaction: %+v; want ClientErrTxnState, it is forgotten", e)
	}

	c.send(&wire.CBegin{Txn: 3})
	c.send(&wire.CStore{Txn: 3, OID: 7, Serial: commit.TID, Data: []byte("y")})
	c.send(&wire.CVoteFinish{ID: 5, Txn: 3})
	if next, ok := c.recvAnswer().(*wire.CCommit); !ok || next.ID != 5 || next.TID <= commit.TID {
		t.Fatalf("answer %+v; want a commit after %x", next, commit.TID)
	}
}

// TestPipelinedTransactions streams, on one connection, several pipelined
// transactions at once, one with more stores than a transaction queues,
// then commits each in one step: every store is applied, and every commit
// is answered.
func TestPipelinedTransactions(t *testing.T) {
	srv, store := start(t, clientserver.Config{})
	c := dial(t, srv)
	const txns, stores = 4, 200
	for txn := uint64(1); txn <= txns; txn++ {
		c.send(&wire.CBegin{Txn: txn})
	}
	for i := range stores {
		for txn := uint64(1); txn <= txns; txn++ {
			if txn > 1 && i > 0 {
				continue // one store each, but for transaction 1
			}
			c.send(&wire.CStore{Txn: txn, OID: txn<<16 | uint64(i), Data: []byte{byte(i)}})
		}
	}
	for txn := uint64(1); txn <= txns; txn++ {
		c.send(&wire.CVoteFinish{ID: txn, Txn: txn})
	}
	committed := make(map[uint64]bool)
	for len(committed) < txns {
		m, ok := c.recvAnswer().(*wire.CCommit)
		if !ok || m.ID < 1 || m.ID > txns || committed[m.ID] {
			t.Fatalf("answer %+v; want one CCommit for each of requests 1 to %d", m, txns)
		}
		committed[m.ID] = true
	}
	for i := range stores {
		data, _, err := store.Load(context.Background(), storage.OID(1<<16|i))
		if err != nil || len(data) != 1 || data[0] != byte(i) {
			t.Fatalf("Load of store %d: %x, %v", i, data, err)
		}
	}
}
