package gcs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// coordinator drives a coordCore: it accepts members' links, relays their
// messages, applies flow control and runs the failure-detection clock.
type coordinator struct {
	g    *Group
	node *Node

	mu      sync.Mutex
	core    *coordCore
	closed  bool
	space   chan struct{} // closed and replaced when a window gains room
	waiters atomic.Int32  // senders waiting on space
	opens   map[net.Conn]struct{}

	settledView uint64 // the last view every link was told to write
}

var errStale = errors.New("gcs: link replaced")

func newCoordinatorGroup(n *Node, name string) *Group {
	g := newGroup(n, name)
	c := &coordinator{g: g, node: n, space: make(chan struct{}), opens: map[net.Conn]struct{}{}}
	c.core = newCoordCore(n.cfg.Name, n.maxFrame, n.cfg, n.random, g.events.push)
	g.c = c
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c.tickLoop()
	}()
	return g
}

func (c *coordinator) tickLoop() {
	t := time.NewTicker(c.node.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-c.g.ctx.Done():
			return
		case now := <-t.C:
			c.mu.Lock()
			c.core.tick(now)
			c.settleLocked()
			c.mu.Unlock()
		}
	}
}

// settleLocked acts on what the core did: removed members' links send their
// bye, and if the view changed every link has it to write.
func (c *coordinator) settleLocked() {
	if len(c.core.removed) == 0 && c.core.view.ID == c.settledView {
		return
	}
	c.settledView = c.core.view.ID
	for _, m := range c.core.removed {
		c.node.log.Info("gcs: member removed", "group", c.g.name, "member", m.id, "reason", byeErr(m.bye))
		if m.link != nil {
			m.link.notify()
		}
	}
	clear(c.core.removed)
	c.core.removed = c.core.removed[:0]
	for _, m := range c.core.order {
		if m.link != nil {
			m.link.notify()
		}
	}
	c.signalSpaceLocked()
}

func (c *coordinator) signalSpaceLocked() {
	if c.waiters.Load() > 0 {
		close(c.space)
		c.space = make(chan struct{})
	}
}

// received is called after the coordinator's own Receive: a relay may be
// waiting for room in the local queue.
func (c *coordinator) received() {
	if c.waiters.Load() > 0 {
		c.mu.Lock()
		c.signalSpaceLocked()
		c.mu.Unlock()
	}
}

// send queues p for its targets: for a multicast every member but from,
// and the coordinator itself unless it is the origin; for a unicast p.dest.
// It waits while a target's window (or the coordinator's own queue) is full,
// evicting members still full after SlowMemberTimeout. abort ends the wait
// when the relaying link closes.
func (c *coordinator) send(ctx context.Context, from *coreMember, p *payload, abort <-chan struct{}) error {
	var (
		deadline time.Time
		timer    *time.Timer
		slow     []*coreMember
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	localLimit := c.core.winMsgs
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		var dest *coreMember
		toSelf := false
		if p.dest != "" {
			if p.dest == c.core.self {
				toSelf = true
			} else if dest = c.core.byID[p.dest]; dest == nil {
				c.mu.Unlock()
				if from != nil {
					return nil // the destination left; nobody is waiting for it
				}
				return fmt.Errorf("%w: %s", ErrNotMember, p.dest)
			}
		} else {
			toSelf = p.origin != c.core.self
		}
		selfFull := toSelf && c.g.events.len() >= localLimit
		slow = slow[:0]
		if dest != nil {
			if c.core.blocked(dest, p.size) {
				slow = append(slow, dest)
			}
		} else if p.dest == "" {
			for _, m := range c.core.order {
				if m != from && c.core.blocked(m, p.size) {
					slow = append(slow, m)
				}
			}
		}
		if !selfFull && len(slow) == 0 {
			c.queueLocked(p, from, dest, toSelf)
			c.mu.Unlock()
			return nil
		}
		if len(slow) > 0 && !deadline.IsZero() && !time.Now().Before(deadline) {
			for _, m := range slow {
				c.node.log.Warn("gcs: evicting member that does not keep up", "group", c.g.name, "member", m.id,
					"connected", m.connected, "unacked", m.out.q.n, "unacked_bytes", m.out.bytes)
				c.core.evict(m)
			}
			c.settleLocked()
			c.mu.Unlock()
			continue
		}
		ch := c.space
		c.waiters.Add(1)
		c.mu.Unlock()
		if deadline.IsZero() {
			deadline = time.Now().Add(c.node.cfg.SlowMemberTimeout)
			timer = time.NewTimer(c.node.cfg.SlowMemberTimeout)
		}
		var err error
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			err = ctx.Err()
		case <-abort:
			err = ErrClosed
		case <-c.g.ctx.Done():
			err = ErrClosed
		}
		c.waiters.Add(-1)
		if err != nil {
			return err
		}
	}
}

func (c *coordinator) queueLocked(p *payload, from, dest *coreMember, toSelf bool) {
	if dest != nil {
		dest.out.push(p)
		if dest.link != nil {
			dest.link.notify()
		}
	} else if p.dest == "" {
		for _, m := range c.core.order {
			if m != from {
				m.out.push(p)
				if m.link != nil {
					m.link.notify()
				}
			}
		}
	}
	if toSelf {
		data := p.parts[0]
		if len(p.parts) != 1 {
			data = make([]byte, 0, p.size)
			for _, part := range p.parts {
				data = append(data, part...)
			}
		}
		c.g.events.push(Event{Kind: EventMessage, Origin: p.origin, Unicast: p.dest != "", Data: data})
	}
	c.settleLocked()
}

// attach runs a member's session on a new connection after its hello.
func (c *coordinator) attach(conn net.Conn, br *bufio.Reader, hello *frame) {
	log := c.node.log.With("group", c.g.name, "remote", conn.RemoteAddr())
	refuse := func(code byte, text string) {
		var w frameWriter
		w.bye(code, text)
		_ = w.flush(conn)
		conn.Close()
	}
	c.mu.Lock()
	// The member comes back while an old link may still be running: stop it
	// first, so that one link at a time handles the member's stream. (Loop:
	// another attach of the same session may have won the lock meanwhile.)
	for hello.session != 0 {
		m := c.core.bySession[hello.session]
		if m == nil || m.link == nil {
			break
		}
		old := m.link
		m.link = nil
		c.core.disconnect(m, time.Now())
		c.mu.Unlock()
		old.close()
		<-old.readerDone
		c.mu.Lock()
	}
	if c.closed {
		c.mu.Unlock()
		refuse(byeClosing, "group closing")
		return
	}
	var (
		m    *coreMember
		code byte
		err  error
	)
	now := time.Now()
	if hello.session == 0 {
		if hello.winMsgs == 0 || hello.winBytes < uint64(c.node.cfg.MaxMessage) {
			code, err = byeIncompatible, fmt.Errorf("member window of %d messages and %d bytes: need at least 1 message and MaxMessage (%d) bytes",
				hello.winMsgs, hello.winBytes, c.node.cfg.MaxMessage)
		} else {
			m, code = c.core.join(string(hello.name), int(min(hello.winMsgs, maxWindowMessages)), int(min(hello.winBytes, 1<<40)), now)
		}
	} else {
		m, code, err = c.core.resume(hello.session, hello.delivered)
	}
	if code != 0 {
		c.settleLocked()
		c.mu.Unlock()
		text := byeErr(code).Error()
		if err != nil {
			text = err.Error()
		}
		log.Info("gcs: refusing member", "node", string(hello.name), "reason", text)
		refuse(code, text)
		return
	}
	ml := newMemberLink(c, m, int(min(hello.winMsgs, maxWindowMessages)))
	l := newLink(c.node, conn, br, ml, log.With("member", m.id))
	m.link = l
	c.core.connect(m)
	c.settleLocked()
	l.notify() // resend what the member missed at once
	var w frameWriter
	w.welcome(m.session, m.in, m.id)
	c.mu.Unlock()
	if hello.session == 0 {
		log.Info("gcs: member joined", "member", m.id)
	} else {
		log.Info("gcs: member resumed", "member", m.id, "from", hello.delivered+1)
	}
	if err := w.flush(conn); err != nil {
		l.close()
	}
	_ = conn.SetDeadline(time.Time{})
	c.node.wg.Add(1)
	go func() {
		defer c.node.wg.Done()
		ml.relayLoop(l)
	}()
	l.run()
}

// memberLink is the coordinator's end of one member's session. Its reader
// never blocks: messages go to a queue (bounded by the member's window,
// since the coordinator acknowledges only what it relayed) that a relay
// goroutine drains, waiting for flow control as needed. Acknowledgements
// are handled at once, so two members relaying to each other cannot wait on
// each other.
type memberLink struct {
	c *coordinator
	m *coreMember

	limit      int    // the member's window, in messages
	lastQueued uint64 // reader only: last sequence number queued

	mu        sync.Mutex
	q         []inbound
	signal    chan struct{}
	relayDone chan struct{}
}

// inbound is a message from a member waiting to be relayed.
type inbound struct {
	seq     uint64
	leave   bool
	dest    MemberID
	payload []byte
}

func newMemberLink(c *coordinator, m *coreMember, limit int) *memberLink {
	return &memberLink{c: c, m: m, limit: limit, lastQueued: m.in,
		signal: make(chan struct{}, 1), relayDone: make(chan struct{})}
}

func (s *memberLink) push(in inbound) error {
	s.mu.Lock()
	if len(s.q) >= s.limit+1 {
		s.mu.Unlock()
		return protoErr("member %s overran its window of %d messages", s.m.id, s.limit)
	}
	s.q = append(s.q, in)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
	return nil
}

// pop returns the next message to relay, or false when the link closes.
func (s *memberLink) pop(done <-chan struct{}) (inbound, bool) {
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			in := s.q[0]
			s.q[0] = inbound{}
			s.q = s.q[1:]
			if len(s.q) == 0 {
				s.q = s.q[:0:0]
			}
			s.mu.Unlock()
			return in, true
		}
		s.mu.Unlock()
		select {
		case <-s.signal:
		case <-done:
			return inbound{}, false
		}
	}
}

func (s *memberLink) relayLoop(l *link) {
	defer close(s.relayDone)
	c, m := s.c, s.m
	ackEvery := uint64(max(1, s.limit/4))
	for {
		in, ok := s.pop(l.done)
		if !ok {
			return
		}
		if in.leave {
			c.mu.Lock()
			if m.bye == 0 {
				m.in = in.seq
				c.core.remove(m, byeLeft)
				c.settleLocked()
			}
			c.mu.Unlock()
			return
		}
		if err := c.send(c.g.ctx, m, newPayload(m.id, in.dest, [][]byte{in.payload}, len(in.payload)), l.done); err != nil {
			l.close()
			return
		}
		// The acknowledgement waits for the next frame to the member (a
		// reply usually follows soon) or the next heartbeat, unless a
		// quarter of the member's window is waiting for it: one of its
		// own for every message of a quiet stream would cost both sides a
		// write, a read and a wake-up each.
		c.mu.Lock()
		m.in = in.seq
		m.inBytes += len(in.payload)
		due := m.in-m.inAcked >= ackEvery || m.inBytes >= m.winBytes/4
		c.mu.Unlock()
		if due {
			l.notify()
		}
	}
}

func (s *memberLink) collect(l *link, w *frameWriter, heartbeat bool) (more, final bool) {
	c, m := s.c, s.m
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.link != l {
		return false, true
	}
	if m.in > m.inAcked || heartbeat {
		w.ack(m.in)
		m.inAcked, m.inBytes = m.in, 0
	}
	if m.bye != 0 {
		text := byeErr(m.bye).Error()
		if c.closed {
			text = "coordinator closed the group"
		}
		w.bye(m.bye, text)
		return false, true
	}
	for m.out.pending() && w.size < writeBudget {
		seq := m.out.written
		w.message(seq, m.out.q.at(int(seq-m.out.base)))
		m.out.written++
	}
	return m.out.pending(), false
}

func (s *memberLink) handle(l *link, f *frame) error {
	c, m := s.c, s.m
	switch f.typ {
	case frameAck:
		c.mu.Lock()
		defer c.mu.Unlock()
		if m.link != l {
			return errStale
		}
		if m.bye != 0 {
			return nil // removed: the writer is sending the bye
		}
		freed, err := c.core.ack(m, f.seq)
		if freed {
			c.signalSpaceLocked()
		}
		return err
	case frameData, frameLeave:
		switch {
		case f.seq <= s.lastQueued:
			return nil // sent again after a reconnection; already relayed
		case f.seq != s.lastQueued+1:
			return protoErr("message %d from %s after %d: a gap", f.seq, m.id, s.lastQueued)
		}
		s.lastQueued = f.seq
		in := inbound{seq: f.seq, leave: f.typ == frameLeave, payload: f.payload}
		if len(f.dest) > 0 {
			in.dest = MemberID(f.dest)
		}
		return s.push(in)
	default:
		return protoErr("member sent frame type %d in a session", f.typ)
	}
}

func (s *memberLink) down(l *link, err error) {
	<-s.relayDone
	c, m := s.c, s.m
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.link == l {
		m.link = nil
		c.core.disconnect(m, time.Now())
		if m.bye == 0 {
			c.node.log.Info("gcs: member disconnected", "group", c.g.name, "member", m.id, "err", err)
		}
	}
}

// serveOpen relays the messages of a non-member sender, acknowledging each.
func (c *coordinator) serveOpen(conn net.Conn, br *bufio.Reader, name string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		return
	}
	c.opens[conn] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.opens, conn)
		c.mu.Unlock()
		conn.Close()
	}()
	var w frameWriter
	w.welcome(0, 0, MemberID(name))
	if w.flush(conn) != nil {
		return
	}
	abort := make(chan struct{})
	defer close(abort)
	dec := newDecoder(c.node.cfg.MaxMessage)
	var f frame
	for seq := uint64(1); ; seq++ {
		_ = conn.SetDeadline(time.Now().Add(c.node.cfg.FailureTimeout))
		if err := dec.read(br, &f); err != nil {
			return
		}
		if f.typ != frameData || f.seq != seq || f.flags != 0 {
			w.bye(byeProtocol, "open sender: expected multicast data frame")
			_ = w.flush(conn)
			return
		}
		if err := c.send(c.g.ctx, nil, newPayload(MemberID(name), "", [][]byte{f.payload}, len(f.payload)), abort); err != nil {
			return
		}
		w.ack(seq)
		if w.flush(conn) != nil {
			return
		}
	}
}

// shutdown ends the group: every member's link sends a bye (code), then
// closes. It waits for the byes to go out at most a heartbeat interval, less
// if ctx ends first.
func (c *coordinator) shutdown(ctx context.Context, code byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var links []*link
	for _, m := range c.core.order {
		m.bye = code
		if m.link != nil {
			links = append(links, m.link)
			m.link.notify()
		}
	}
	for conn := range c.opens {
		conn.Close()
	}
	c.signalSpaceLocked()
	c.mu.Unlock()
	c.g.markClosed()
	grace := time.NewTimer(c.node.cfg.HeartbeatInterval)
	defer grace.Stop()
	expired := false
	for _, l := range links {
		if !expired {
			select {
			case <-l.readerDone:
			case <-grace.C:
				expired = true
			case <-ctx.Done():
				expired = true
			}
		}
		l.close()
	}
}
