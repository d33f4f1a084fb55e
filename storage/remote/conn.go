package remote

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// readBuffer is the size of a connection's read buffer.
const readBuffer = 64 << 10

// conn is one connection to a node: requests go out through a coalescing
// writer, and one goroutine reads answers and hands each to its call.
type conn struct {
	c    *Client
	addr string
	nc   net.Conn
	w    *clientproto.Writer
	// onInvalidate receives the node's invalidations (nil: ignore them).
	onInvalidate func(*wire.CInvalidate)
	// onLost is called once, as soon as the connection is known to have
	// ended (before any call fails because of it), with the reason.
	onLost func(*conn, error)
	// role is what the node said it is when the client connected ("" if
	// it was not asked).
	role string

	mu     sync.Mutex
	nextID uint64
	calls  map[uint64]*call
	err    error // why the connection ended, set by fail
	done   chan struct{}
	lose   sync.Once // runs fail's work once; later callers wait for it

	nextTxn uint64 // guarded by mu
}

// call is one request in flight: the items of a streamed answer, then its
// final message.
type call struct {
	items []wire.Message
	final wire.Message
	done  chan struct{}
}

// dial connects to addr and starts reading.
func (c *Client) dial(ctx context.Context, addr string, onInvalidate func(*wire.CInvalidate), onLost func(*conn, error)) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	if c.cfg.TLS != nil {
		cfg := c.cfg.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tc
	}
	cn := &conn{
		c: c, addr: addr, nc: nc, w: clientproto.NewWriter(nc, c.codec, DefaultMaxQueued, c.cfg.CallTimeout),
		onInvalidate: onInvalidate, onLost: onLost, calls: make(map[uint64]*call), done: make(chan struct{}),
	}
	c.wg.Add(1)
	go cn.readLoop()
	return cn, nil
}

// close ends the connection; calls in flight fail.
func (cn *conn) close() { _ = cn.nc.Close() }

// fail ends the connection for err (the first reason wins) and tells the
// endpoint before returning, also to a concurrent caller: every way a call
// learns that the connection is lost goes through fail first, so once a
// call has failed with ErrDisconnected the endpoint no longer hands the
// connection out nor says it is up.
func (cn *conn) fail(err error) {
	cn.lose.Do(func() {
		cn.mu.Lock()
		cn.err = err
		cn.mu.Unlock()
		_ = cn.nc.Close()
		cn.onLost(cn, err)
	})
}

// failed reports whether fail was called.
func (cn *conn) failed() bool {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err != nil
}

func (cn *conn) readLoop() {
	defer cn.c.wg.Done()
	cn.fail(cn.read())
	cn.w.Close()
	cn.mu.Lock()
	calls := cn.calls
	cn.calls = nil
	cn.mu.Unlock()
	for _, cl := range calls {
		close(cl.done)
	}
	close(cn.done)
}

// read reads answers until the connection fails or breaks the protocol;
// it never returns nil.
func (cn *conn) read() error {
	r := bufio.NewReaderSize(cn.nc, readBuffer)
	max := cn.c.codec.Config().MaxMessageLen
	for {
		b, err := clientproto.ReadFrame(r, max)
		if err != nil {
			return err
		}
		m, err := cn.c.codec.Unmarshal(b)
		if err != nil {
			return err
		}
		if err := cn.deliver(m); err != nil {
			cn.c.log.Warn("node broke the client protocol; reconnecting", zap.String("addr", cn.addr), zap.Error(err))
			return err
		}
	}
}

// deliver hands m to its call, or to the invalidation handler.
func (cn *conn) deliver(m wire.Message) error {
	var id uint64
	item := false
	switch m := m.(type) {
	case *wire.CInvalidate:
		if len(m.OIDs)%8 != 0 {
			return fmt.Errorf("invalidation of %s has %d bytes of OIDs, not a multiple of 8", storage.TID(m.TID), len(m.OIDs))
		}
		if cn.onInvalidate != nil {
			cn.onInvalidate(m)
		}
		return nil
	case *wire.CRevision:
		id, item = m.ID, true
	case *wire.CTxn:
		id, item = m.ID, true
	case *wire.CRecord:
		id, item = m.ID, true
	case *wire.COK:
		id = m.ID
	case *wire.CError:
		if m.Code == wire.ClientErrProtocol {
			return fmt.Errorf("the node refused a request: %s", m.Text)
		}
		id = m.ID
	case *wire.CData:
		id = m.ID
	case *wire.CNum:
		id = m.ID
	case *wire.CCommit:
		id = m.ID
	case *wire.CRoleIs:
		id = m.ID
	default:
		return fmt.Errorf("unexpected message %q", m.Method())
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cl := cn.calls[id]
	if cl == nil {
		return fmt.Errorf("answer %q to request %d, which is not in flight", m.Method(), id)
	}
	if item {
		cl.items = append(cl.items, m)
		return nil
	}
	cl.final = m
	delete(cn.calls, id)
	close(cl.done)
	return nil
}

// alive reports whether the connection is still up.
func (cn *conn) alive() bool {
	select {
	case <-cn.done:
		return false
	default:
		return true
	}
}

// txnNumber returns a new transaction number for this connection.
func (cn *conn) txnNumber() uint64 {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	cn.nextTxn++
	return cn.nextTxn
}

// roundTrip sends the request build makes with a new id and waits for its
// answer: the final message and the items before it. An error answer is
// returned as its error.
func (cn *conn) roundTrip(ctx context.Context, build func(id uint64) wire.Message) (wire.Message, []wire.Message, error) {
	cn.c.stats.calls.Add(1)
	// A call without a deadline waits for its answer up to CallTimeout. A
	// timer does that more cheaply than a context with a deadline, which
	// would cost this, the most frequent path, several allocations; the
	// wait for room in the send queue before it is bounded all the same,
	// by the writer's timeout (also CallTimeout).
	var expired <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(cn.c.cfg.CallTimeout)
		defer t.Stop()
		expired = t.C
	}
	cn.mu.Lock()
	if cn.calls == nil {
		cn.mu.Unlock()
		return nil, nil, cn.lostErr()
	}
	cn.nextID++
	id := cn.nextID
	cl := &call{done: make(chan struct{})}
	cn.calls[id] = cl
	cn.mu.Unlock()
	if err := cn.w.SendWait(ctx, build(id)); err != nil {
		cn.mu.Lock()
		if cn.calls != nil {
			delete(cn.calls, id)
		}
		cn.mu.Unlock()
		return nil, nil, cn.sendErr(err)
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		cn.forget(id)
		return nil, nil, ctx.Err()
	case <-expired:
		cn.forget(id)
		return nil, nil, context.DeadlineExceeded
	}
	switch m := cl.final.(type) {
	case nil:
		return nil, nil, cn.lostErr()
	case *wire.CError:
		return m, cl.items, clientproto.Error(m)
	}
	return cl.final, cl.items, nil
}

// queue queues a request that has no answer (a pipelined begin, a store)
// to go out with the next request; it waits while the send queue is full.
func (cn *conn) queue(ctx context.Context, m wire.Message) error {
	if err := cn.w.Queue(ctx, m); err != nil {
		return cn.sendErr(err)
	}
	return nil
}

// post sends a request nobody waits for (an abort) without waiting for
// room in the send queue: if the queue is full, the connection is dropped,
// which aborts the connection's transactions on the node all the same.
func (cn *conn) post(m wire.Message) {
	if err := cn.w.Send(m); err != nil {
		_ = cn.sendErr(err)
	}
}

// sendErr maps a failure to queue a request: a refused encoding is the
// request's error; anything else ends the connection.
func (cn *conn) sendErr(err error) error {
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		return fmt.Errorf("%w: %v", storage.ErrTooLarge, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrUnknownMethod):
		return err
	}
	cn.fail(err)
	return cn.lostErr()
}

// forget drops a call that nobody waits for any more; its answer, if it
// comes, is ignored.
func (cn *conn) forget(id uint64) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.calls != nil {
		// Keep the id known, so the late answer is not a protocol error.
		cn.calls[id] = &call{done: make(chan struct{})}
	}
}

// lostErr is the error of a call on a connection that ended.
func (cn *conn) lostErr() error {
	if cn.c.isClosed() {
		return errClosed
	}
	return fmt.Errorf("%w: connection to %s lost", ErrDisconnected, cn.addr)
}
