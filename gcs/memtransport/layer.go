package memtransport

import (
	"context"
	"net"
	"sync"
)

// network is the name Addr.Network reports.
const network = "mem"

// Addr is a node address on a Network.
type Addr string

// Network returns "mem".
func (Addr) Network() string { return network }

// String returns the address.
func (a Addr) String() string { return string(a) }

// Layer is one node on a Network: a net.Listener for the connections dialed
// to its address plus Dial for connections it opens, as gcs.StreamLayer
// expects. Its methods are safe for concurrent use.
type Layer struct {
	net  *Network
	addr string

	mu      sync.Mutex
	closed  bool
	done    chan struct{} // closed by Close; wakes blocked Dial calls
	backlog []*Conn       // dialed connections waiting for Accept
	changed signal        // backlog or closed changed
}

func newLayer(n *Network, addr string) *Layer {
	return &Layer{net: n, addr: addr, done: make(chan struct{})}
}

// Addr returns the layer's address.
func (l *Layer) Addr() net.Addr { return Addr(l.addr) }

// Accept waits for and returns the next connection dialed to the layer. After
// Close it returns an error wrapping net.ErrClosed.
func (l *Layer) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: network, Addr: Addr(l.addr), Err: net.ErrClosed}
		}
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			l.backlog[0] = nil
			l.backlog = l.backlog[1:]
			l.changed.broadcast()
			l.mu.Unlock()
			return c, nil
		}
		wake := l.changed.watch()
		l.mu.Unlock()
		<-wake
	}
}

// Close stops listening: blocked and later Accept calls fail with
// net.ErrClosed, connections still waiting in the backlog are reset, and the
// address is free for a new Listen. Established connections stay open, as
// with a TCP listener; later Dial calls from this layer fail.
func (l *Layer) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	pending := l.backlog
	l.backlog = nil
	l.changed.broadcast()
	l.mu.Unlock()

	n := l.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.layers[l.addr] == l {
		delete(n.layers, l.addr)
	}
	for _, c := range pending {
		n.resetLocked(c.pair, "listener "+l.addr+" closed before accepting")
	}
	return nil
}

// Dial opens a connection from this layer to the layer listening at address.
// It fails with ErrRefused if nothing listens there, ErrUnreachable if the
// link is partitioned, and the context's error if ctx ends while the
// listener's backlog is full. Dialing takes no simulated time, even on a
// delayed link.
func (l *Layer) Dial(ctx context.Context, address string) (net.Conn, error) {
	n := l.net
	fail := func(err error) (net.Conn, error) {
		n.mu.Lock()
		n.stats.DialErrors++
		n.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Source: Addr(l.addr), Addr: Addr(address), Err: err}
	}
	n.mu.Lock()
	n.stats.Dials++
	n.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return fail(net.ErrClosed)
	}
	p, dst, err := n.connect(l.addr, address)
	if err != nil {
		return fail(err)
	}
	for {
		dst.mu.Lock()
		if dst.closed {
			dst.mu.Unlock()
			n.reset(p, "listener "+address+" closed")
			return fail(ErrRefused)
		}
		if len(dst.backlog) < n.cfg.AcceptBacklog {
			dst.backlog = append(dst.backlog, p.listenerEnd)
			dst.changed.broadcast()
			dst.mu.Unlock()
			n.mu.Lock()
			n.stats.Opened++
			n.mu.Unlock()
			return p.dialerEnd, nil
		}
		wake := dst.changed.watch()
		dst.mu.Unlock()
		select {
		case <-wake:
		case <-l.done:
			n.reset(p, "dialing layer "+l.addr+" closed")
			return fail(net.ErrClosed)
		case <-ctx.Done():
			n.reset(p, "dial canceled")
			return fail(ctx.Err())
		}
	}
}

// connect registers a new connection from dialer to the layer at listener,
// checking faults under the same lock that Partition takes, so a fault set
// concurrently either refuses the dial or breaks the connection.
func (n *Network) connect(dialer, listener string) (*pair, *Layer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dst := n.layers[listener]
	switch {
	case n.closed:
		return nil, nil, net.ErrClosed
	case n.unreachableLocked(dialer, listener):
		return nil, nil, ErrUnreachable
	case dst == nil:
		return nil, nil, ErrRefused
	}
	p := newPair(n, dialer, listener, n.cfg.BufferSize)
	n.conns[p] = struct{}{}
	return p, dst, nil
}

// signal is a broadcast to waiters, guarded by its owner's mutex: a waiter
// takes watch() under the mutex and receives from it after unlocking; the
// owner calls broadcast() under the mutex after every change. Waiting on a
// channel keeps waiters durably blocked inside a synctest bubble.
type signal struct {
	ch chan struct{}
}

func (s *signal) watch() <-chan struct{} {
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}
