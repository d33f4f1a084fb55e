package gcs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// member drives a member's session with its coordinator: one link at a
// time, resumed after a disconnection from where both sides left off.
type member struct {
	g       *Group
	node    *Node
	contact string

	mu        sync.Mutex
	closed    bool
	session   uint64 // 0 before a join and after the session was lost
	gen       uint64 // counts sessions, to tell their events apart
	self      MemberID
	view      View
	out       sendState // to the coordinator
	delivered uint64    // last sequence number queued for Receive
	consumed  uint64    // last sequence number Receive returned
	consumedB int       // bytes Receive returned since the last ack
	ackSent   uint64
	link      *link
	space     chan struct{} // closed and replaced when the window gains room
	leaveSeq  uint64
	left      chan struct{} // closed when the coordinator acknowledged Leave
	lastBye   *byeError

	origins map[string]MemberID // used by the link reader only
}

func newMemberGroup(n *Node, name, contact string) *Group {
	g := newGroup(n, name)
	g.m = &member{
		g: g, node: n, contact: contact, out: newSendState(),
		space: make(chan struct{}), left: make(chan struct{}), origins: map[string]MemberID{},
	}
	return g
}

// connect dials the coordinator and resumes the session, or joins afresh
// when there is none.
func (m *member) connect(ctx context.Context) (net.Conn, *bufio.Reader, error) {
	m.mu.Lock()
	hello := &frame{group: []byte(m.g.name), session: m.session, delivered: m.delivered}
	m.mu.Unlock()
	conn, br, w, err := m.node.dial(ctx, m.contact, hello)
	if err != nil {
		return nil, nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		conn.Close()
		return nil, nil, ErrClosed
	}
	if m.session != 0 && w.session == m.session {
		err := m.out.rewind(w.seq)
		if err == nil {
			var n int
			if n, err = m.out.ack(w.seq); n > 0 {
				m.signalSpaceLocked()
			}
		}
		if err != nil {
			conn.Close()
			m.session = 0
			return nil, nil, err
		}
		return conn, br, nil
	}
	if w.session == 0 {
		conn.Close()
		return nil, nil, protoErr("welcome without a session")
	}
	m.session, m.self = w.session, MemberID(w.name)
	m.gen++
	m.out = newSendState()
	m.delivered, m.consumed, m.consumedB, m.ackSent = 0, 0, 0, 0
	m.view = View{}
	m.signalSpaceLocked()
	return conn, br, nil
}

func (m *member) signalSpaceLocked() {
	close(m.space)
	m.space = make(chan struct{})
}

func (m *member) notice(err error) {
	m.node.log.Warn("gcs: group notice", "group", m.g.name, "err", err)
	m.g.events.push(Event{Kind: EventNotice, Err: fmt.Errorf("gcs: group %q: %w", m.g.name, err)})
}

// run keeps the session going until the group is closed: it runs a link,
// and when the link fails reconnects with backoff; when the coordinator
// ended the session it reports why and joins afresh.
func (m *member) run(conn net.Conn, br *bufio.Reader) {
	cfg := &m.node.cfg
	for {
		l := newLink(m.node, conn, br, m, m.node.log.With("group", m.g.name, "coordinator", m.contact))
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			conn.Close()
			return
		}
		m.link, m.ackSent = l, 0
		m.mu.Unlock()
		l.notify() // resend what the coordinator missed, and acknowledge, at once
		l.run()

		m.mu.Lock()
		bye, closed := m.lastBye, m.closed
		m.lastBye = nil
		m.mu.Unlock()
		if closed {
			return
		}
		if bye != nil && !m.byeEndsSession(bye) {
			return
		}
		// The coordinator counts as lost from when it was last heard from.
		lostAt, notified := time.Now(), false
		if h := l.heardAt.Load(); h != 0 {
			lostAt = time.Unix(0, h)
		}
		for attempt := 0; ; attempt++ {
			d := m.node.jitter(min(cfg.ReconnectMax, cfg.ReconnectMin<<min(attempt, 20)))
			select {
			case <-m.g.ctx.Done():
				return
			case <-time.After(d):
			}
			var err error
			conn, br, err = m.connect(m.g.ctx)
			if err == nil {
				break
			}
			if m.g.ctx.Err() != nil {
				return
			}
			if be := (*byeError)(nil); errors.As(err, &be) {
				if !m.byeEndsSession(be) {
					return
				}
				if m.sessionLost() {
					attempt = -1
					continue
				}
			}
			m.node.log.Debug("gcs: reconnect failed", "group", m.g.name, "coordinator", m.contact, "err", err)
			if !notified && time.Since(lostAt) >= cfg.FailureTimeout {
				m.notice(fmt.Errorf("%w: no answer from %s for %v: %v", ErrCoordinatorLost, m.contact, time.Since(lostAt).Round(time.Millisecond), err))
				notified = true
			}
		}
	}
}

// byeEndsSession acts on a bye from the coordinator. It returns false when
// the group is over for this member.
func (m *member) byeEndsSession(be *byeError) bool {
	switch be.code {
	case byeLeft:
		m.close()
		return false
	case byeGroupClosed:
		m.notice(be)
		m.close()
		return false
	case byeEvicted, byeFellBehind, byeRemoved, byeProtocol:
		m.notice(be)
		m.mu.Lock()
		m.session = 0
		m.mu.Unlock()
	}
	return true
}

func (m *member) sessionLost() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.session == 0
}

func (m *member) ackEvery() uint64 { return uint64(max(1, m.node.cfg.WindowMessages/4)) }

func (m *member) collect(l *link, w *frameWriter, heartbeat bool) (more, final bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.link != l || m.closed {
		return false, true
	}
	if m.consumed > m.ackSent || heartbeat {
		w.ack(m.consumed)
		m.ackSent, m.consumedB = m.consumed, 0
	}
	for m.out.pending() && w.size < writeBudget {
		seq := m.out.written
		w.message(seq, m.out.q.at(int(seq-m.out.base)))
		m.out.written++
	}
	return m.out.pending(), false
}

func (m *member) handle(l *link, f *frame) error {
	switch f.typ {
	case frameAck:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.link != l {
			return errStale
		}
		n, err := m.out.ack(f.seq)
		if n > 0 {
			m.signalSpaceLocked()
		}
		if m.leaveSeq != 0 && f.seq >= m.leaveSeq {
			m.leaveSeq = 0
			close(m.left)
		}
		return err
	case frameData, frameView:
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.link != l {
			return errStale
		}
		if f.seq != m.delivered+1 {
			return protoErr("message %d from the coordinator after %d", f.seq, m.delivered)
		}
		if n := m.g.events.len(); n > m.node.cfg.WindowMessages+1024 {
			return protoErr("coordinator overran the window: %d events queued, window %d", n, m.node.cfg.WindowMessages)
		}
		m.delivered = f.seq
		ev := Event{seq: f.seq, gen: m.gen}
		if f.typ == frameView {
			v := View{ID: f.viewID, Members: make([]MemberID, len(f.members))}
			for i, b := range f.members {
				v.Members[i] = m.intern(b)
			}
			if v.ID <= m.view.ID {
				return protoErr("view %d after view %d", v.ID, m.view.ID)
			}
			m.view = v
			ev.Kind, ev.View = EventView, v
		} else {
			ev.Kind, ev.Origin, ev.Unicast, ev.Data = EventMessage, m.intern(f.origin), f.flags&flagUnicast != 0, f.payload
			ev.pooled, ev.pool = f.pooled, &m.node.pool
		}
		m.g.events.push(ev)
		return nil
	case frameBye:
		return &byeError{code: f.code, text: string(f.text)}
	default:
		return protoErr("coordinator sent frame type %d in a session", f.typ)
	}
}

// intern returns the MemberID for b without allocating for ids seen before.
func (m *member) intern(b []byte) MemberID {
	if id, ok := m.origins[string(b)]; ok {
		return id
	}
	if len(m.origins) >= 4096 {
		clear(m.origins)
	}
	id := MemberID(b)
	m.origins[string(id)] = id
	return id
}

func (m *member) down(l *link, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.link == l {
		m.link = nil
	}
	if be := (*byeError)(nil); errors.As(err, &be) {
		m.lastBye = be
		if be.code == byeLeft && m.leaveSeq != 0 {
			m.leaveSeq = 0
			close(m.left)
		}
	}
}

// received records that Receive returned ev, and asks for an
// acknowledgement when enough was consumed. Otherwise the acknowledgement
// waits for the next frame the link writes (a reply usually follows soon)
// or for the next heartbeat: an acknowledgement of its own for every
// message of a quiet stream would cost the peers a write, a read and a
// wake-up each.
func (m *member) received(ev Event) {
	if ev.seq == 0 {
		return
	}
	m.mu.Lock()
	if ev.gen == m.gen && ev.seq > m.consumed {
		m.consumed = ev.seq
		m.consumedB += len(ev.Data)
	}
	due := m.consumed > m.ackSent &&
		(m.consumed-m.ackSent >= m.ackEvery() || m.consumedB >= m.node.cfg.WindowBytes/4)
	l := m.link
	m.mu.Unlock()
	if due && l != nil {
		l.notify()
	}
}

func (m *member) send(ctx context.Context, to MemberID, parts [][]byte, size int) error {
	cfg := &m.node.cfg
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		if !m.out.full(size, cfg.WindowMessages, cfg.WindowBytes) {
			m.out.push(newPayload("", to, parts, size))
			l := m.link
			m.mu.Unlock()
			if l != nil {
				l.notify()
			}
			return nil
		}
		ch := m.space
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.g.ctx.Done():
			return ErrClosed
		}
	}
}

func (m *member) leave(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("gcs: leave group %q: %w", m.g.name, ErrClosed)
	}
	m.leaveSeq = m.out.push(&payload{kind: frameLeave})
	l := m.link
	m.mu.Unlock()
	if l != nil {
		l.notify()
	}
	var err error
	select {
	case <-m.left:
	case <-ctx.Done():
		err = fmt.Errorf("gcs: leave group %q: %w", m.g.name, ctx.Err())
	case <-m.g.ctx.Done():
	}
	m.close()
	return err
}

func (m *member) close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	l := m.link
	m.signalSpaceLocked()
	m.mu.Unlock()
	m.g.markClosed()
	if l != nil {
		l.close()
	}
}
