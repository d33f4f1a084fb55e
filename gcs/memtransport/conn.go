package memtransport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pair is one connection: two ends and the two directions between them.
// openEnds is guarded by Network.mu.
type pair struct {
	dialer, listener       string
	toListener, toDialer   *half
	dialerEnd, listenerEnd *Conn
	openEnds               int
}

func newPair(n *Network, dialer, listener string, limit int) *pair {
	p := &pair{
		dialer:     dialer,
		listener:   listener,
		toListener: &half{limit: limit},
		toDialer:   &half{limit: limit},
		openEnds:   2,
	}
	p.dialerEnd = newConn(n, p, dialer, listener, p.toDialer, p.toListener)
	p.listenerEnd = newConn(n, p, listener, dialer, p.toListener, p.toDialer)
	return p
}

// segment is bytes written by one Write call (or the part that fitted),
// readable from readyAt on.
type segment struct {
	data    []byte
	readyAt time.Time
}

// half is one direction of a connection: a bounded FIFO of bytes.
type half struct {
	mu         sync.Mutex
	segs       []segment
	buffered   int // bytes in segs, readable or not yet
	limit      int
	lastReady  time.Time // readyAt of the newest segment, to keep order under changing delays
	eof        bool      // the writing end closed: the reader gets io.EOF after draining
	readerGone bool      // the reading end closed: writes fail
	err        error     // the connection was reset: every operation fails with err
	changed    signal
}

// reset discards buffered bytes and fails both ends with err.
func (h *half) reset(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		h.err = err
		h.segs, h.buffered = nil, 0
		h.changed.broadcast()
	}
}

// readLocked copies the bytes readable at now into b.
func (h *half) readLocked(b []byte, now time.Time) int {
	n := 0
	for n < len(b) && len(h.segs) > 0 {
		s := &h.segs[0]
		if now.Before(s.readyAt) {
			break
		}
		k := copy(b[n:], s.data)
		n += k
		s.data = s.data[k:]
		if len(s.data) == 0 {
			h.segs[0] = segment{}
			h.segs = h.segs[1:]
		}
	}
	if n > 0 {
		h.buffered -= n
		h.changed.broadcast()
	}
	return n
}

// Conn is one end of an in-memory connection. It implements net.Conn and its
// methods are safe for concurrent use; as with TCP, two concurrent Writes on
// one end may interleave when they block on a full buffer.
type Conn struct {
	net           *Network
	pair          *pair
	local, remote string
	in, out       *half
	rd, wd        deadline

	closeOnce sync.Once
	closed    chan struct{}
}

func newConn(n *Network, p *pair, local, remote string, in, out *half) *Conn {
	return &Conn{
		net: n, pair: p, local: local, remote: remote, in: in, out: out,
		closed: make(chan struct{}),
	}
}

var _ net.Conn = (*Conn)(nil)

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: network, Source: Addr(c.local), Addr: Addr(c.remote), Err: err}
}

// check fails an operation on a closed end or past its deadline; both win
// over buffered data, as in package net.
func (c *Conn) check(op string, d *deadline) error {
	select {
	case <-c.closed:
		return c.opErr(op, net.ErrClosed)
	default:
	}
	select {
	case <-d.wait():
		return c.opErr(op, os.ErrDeadlineExceeded)
	default:
	}
	return nil
}

// Read reads bytes the peer wrote that are readable by now (see
// Network.Delay). After the peer closes, it returns the remaining bytes and
// then io.EOF; after a reset it fails at once with ErrReset.
func (c *Conn) Read(b []byte) (int, error) {
	h := c.in
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := c.check("read", &c.rd); err != nil {
			return 0, err
		}
		h.mu.Lock()
		if h.err != nil {
			err := h.err
			h.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		if len(b) == 0 {
			h.mu.Unlock()
			return 0, nil
		}
		now := time.Now()
		if n := h.readLocked(b, now); n > 0 {
			h.mu.Unlock()
			return n, nil
		}
		if h.buffered == 0 && h.eof {
			h.mu.Unlock()
			return 0, io.EOF
		}
		// Wake when the first delayed segment becomes readable.
		var ready <-chan time.Time
		if len(h.segs) > 0 {
			wait := h.segs[0].readyAt.Sub(now)
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			ready = timer.C
		}
		wake := h.changed.watch()
		h.mu.Unlock()
		select {
		case <-wake:
		case <-ready:
		case <-c.rd.wait():
		case <-c.closed:
		}
	}
}

// Write copies b into the connection, blocking while the direction's buffer
// is full. It returns the number of bytes accepted before an error: after a
// deadline some of b may have been sent. A drop fault fails the whole write
// with ErrReset and resets the connection.
func (c *Conn) Write(b []byte) (int, error) {
	if err := c.check("write", &c.wd); err != nil {
		return 0, err
	}
	delay, err := c.net.beforeWrite(c)
	if err != nil {
		return 0, c.opErr("write", err)
	}
	h := c.out
	n := 0
	for {
		h.mu.Lock()
		switch {
		case h.err != nil:
			err = h.err
		case h.readerGone:
			err = ErrPeerClosed
		}
		if err != nil {
			h.mu.Unlock()
			return n, c.opErr("write", err)
		}
		if space := h.limit - h.buffered; space > 0 && n < len(b) {
			k := min(space, len(b)-n)
			readyAt := time.Now().Add(delay)
			if readyAt.Before(h.lastReady) {
				readyAt = h.lastReady
			}
			h.lastReady = readyAt
			h.segs = append(h.segs, segment{data: append([]byte(nil), b[n:n+k]...), readyAt: readyAt})
			h.buffered += k
			n += k
			h.changed.broadcast()
		}
		if n == len(b) {
			h.mu.Unlock()
			return n, nil
		}
		wake := h.changed.watch()
		h.mu.Unlock()
		select {
		case <-wake:
		case <-c.wd.wait():
		case <-c.closed:
		}
		if err := c.check("write", &c.wd); err != nil {
			return n, err
		}
	}
}

// Close closes this end. The peer reads the bytes already written and then
// io.EOF; its later writes fail with ErrPeerClosed. Blocked Read and Write
// calls on this end return net.ErrClosed. Closing twice returns an error
// wrapping net.ErrClosed.
func (c *Conn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		close(c.closed)
		c.rd.set(time.Time{})
		c.wd.set(time.Time{})

		c.out.mu.Lock()
		c.out.eof = true
		c.out.changed.broadcast()
		c.out.mu.Unlock()

		c.in.mu.Lock()
		c.in.readerGone = true
		c.in.segs, c.in.buffered = nil, 0
		c.in.changed.broadcast()
		c.in.mu.Unlock()

		c.net.endClosed(c.pair)
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

// LocalAddr returns this end's node address.
func (c *Conn) LocalAddr() net.Addr { return Addr(c.local) }

// RemoteAddr returns the peer's node address.
func (c *Conn) RemoteAddr() net.Addr { return Addr(c.remote) }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the time after which Read fails with an error
// wrapping os.ErrDeadlineExceeded (a net.Error whose Timeout is true),
// including a Read already blocked. The zero time removes the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline is SetReadDeadline for Write.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.isClosed() {
		return c.opErr("set", net.ErrClosed)
	}
	c.wd.set(t)
	return nil
}

func (c *Conn) isClosed() bool { return isClosed(c.closed) }

// deadline is a settable point in time whose wait channel is closed once the
// time passes, so blocked operations can select on it. The timer is a
// time.AfterFunc, so it follows a synctest bubble's fake clock.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	expire chan struct{} // closed when the deadline has passed; nil until needed
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expire // the timer fired: wait until it closed expire
	}
	d.timer = nil
	if d.expire != nil && isClosed(d.expire) {
		d.expire = nil // expired: waiters already woke, start afresh
	}
	if t.IsZero() {
		return
	}
	if d.expire == nil {
		d.expire = make(chan struct{})
	}
	if dur := time.Until(t); dur > 0 {
		expire := d.expire
		d.timer = time.AfterFunc(dur, func() { close(expire) })
		return
	}
	close(d.expire)
}

// wait returns a channel closed once the deadline passes; without a
// deadline it is a nil channel, which blocks forever in a select.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expire
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
