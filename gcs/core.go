package gcs

import (
	"fmt"
	"strconv"
	"time"
)

// MemberID names one member of a group for one session: the node's Name, a
// '#' and a number the coordinator assigns. A node that rejoins after losing
// its session gets a new MemberID.
type MemberID string

// View is a group's membership at one point of its history. IDs increase by
// one with every change; Members lists the coordinator first, then the
// others in the order they joined.
type View struct {
	ID      uint64
	Members []MemberID
}

// Contains reports whether m is in the view.
func (v View) Contains(m MemberID) bool {
	for _, x := range v.Members {
		if x == m {
			return true
		}
	}
	return false
}

// payload is one message as queued for sending: its body parts are the
// caller's buffers, referenced and never copied. One payload is shared by
// every member it is queued for.
type payload struct {
	kind   byte // frameData, frameView or frameLeave
	flags  byte
	origin MemberID
	dest   MemberID
	size   int
	parts  [][]byte
	inline [2][]byte
	view   *View
}

func newPayload(origin, dest MemberID, parts [][]byte, size int) *payload {
	p := &payload{kind: frameData, origin: origin, dest: dest, size: size}
	if dest != "" {
		p.flags = flagUnicast
	}
	if len(parts) <= len(p.inline) {
		p.parts = p.inline[:copy(p.inline[:], parts)]
	} else {
		p.parts = append([][]byte(nil), parts...)
	}
	return p
}

// ring is a FIFO of payloads.
type ring struct {
	buf  []*payload
	head int
	n    int
}

func (r *ring) push(p *payload) {
	if r.n == len(r.buf) {
		nb := make([]*payload, max(16, 2*len(r.buf)))
		for i := range r.n {
			nb[i] = r.at(i)
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = p
	r.n++
}

func (r *ring) at(i int) *payload { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) pop() *payload {
	p := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return p
}

// sendState is one direction of a reliable session: the messages sent and
// not yet acknowledged, numbered from base, and how far the current link
// has written them. It is both the retransmission buffer and the writer's
// queue.
type sendState struct {
	q       ring
	base    uint64 // sequence number of q.at(0); base-1 is acknowledged
	written uint64 // next sequence number to write on the link
	bytes   int    // body bytes in q
}

func newSendState() sendState { return sendState{base: 1, written: 1} }

// next is the sequence number the next push gets.
func (s *sendState) next() uint64 { return s.base + uint64(s.q.n) }

func (s *sendState) push(p *payload) uint64 {
	s.q.push(p)
	s.bytes += p.size
	return s.next() - 1
}

// full reports whether a message of size bytes would overflow the window.
// An empty window always takes one message.
func (s *sendState) full(size, winMsgs, winBytes int) bool {
	return s.q.n > 0 && (s.q.n+1 > winMsgs || s.bytes+size > winBytes)
}

// ack drops the messages up to and including seq and reports how many.
func (s *sendState) ack(seq uint64) (int, error) {
	if seq >= s.written {
		return 0, protoErr("ack of %d, but only up to %d was sent", seq, s.written-1)
	}
	n := 0
	for s.base <= seq {
		s.bytes -= s.q.pop().size
		s.base++
		n++
	}
	return n, nil
}

// rewind restarts writing after delivered, the last sequence number the
// peer received, for a new link.
func (s *sendState) rewind(delivered uint64) error {
	if delivered+1 < s.base || delivered >= s.next() {
		return protoErr("peer received up to %d, but %d to %d are buffered", delivered, s.base, s.next()-1)
	}
	s.written = delivered + 1
	return nil
}

func (s *sendState) pending() bool { return s.written < s.next() }

// coreMember is the coordinator's state of one member.
type coreMember struct {
	id        MemberID
	session   uint64
	out       sendState
	winMsgs   int
	winBytes  int
	connected bool
	downSince time.Time
	in        uint64 // last sequence number processed from the member
	inAcked   uint64 // last acknowledgement sent to the member
	inBytes   int    // bytes processed from the member since that acknowledgement
	bye       byte   // set when the member is removed: the bye its link sends
	link      *link  // owned by the driver; nil while disconnected
}

// coordCore is a group coordinator's membership and per-member session
// bookkeeping. It is deterministic: no goroutines, clocks or I/O; the
// driver holds the group lock around every call, passes the time in, and
// acts on what it returns (members whose links must write, byes to send).
type coordCore struct {
	self           MemberID
	maxFrame       int
	failureTimeout time.Duration
	winMsgs        int
	winBytes       int
	newSession     func() uint64
	emit           func(Event) // delivers to the coordinator's own queue

	view      View
	order     []*coreMember // members other than self, in join order
	byID      map[MemberID]*coreMember
	bySession map[uint64]*coreMember
	tombs     map[uint64]byte // removed sessions and why, for members that come back
	tombOrder []uint64
	joins     uint64
	removed   []*coreMember // removed since the driver last looked: their links send a bye
}

const maxTombs = 4096

func newCoordCore(name string, maxFrame int, cfg Config, newSession func() uint64, emit func(Event)) *coordCore {
	c := &coordCore{
		maxFrame: maxFrame, failureTimeout: cfg.FailureTimeout,
		winMsgs: cfg.WindowMessages, winBytes: cfg.WindowBytes,
		newSession: newSession, emit: emit,
		byID: map[MemberID]*coreMember{}, bySession: map[uint64]*coreMember{}, tombs: map[uint64]byte{},
	}
	c.self = c.nextID(name)
	c.newView()
	return c
}

func (c *coordCore) nextID(name string) MemberID {
	c.joins++
	return MemberID(name + "#" + strconv.FormatUint(c.joins, 10))
}

// join adds a member for a node called name; it returns a bye code if the
// member cannot be added.
func (c *coordCore) join(name string, winMsgs, winBytes int, now time.Time) (*coreMember, byte) {
	size := 19
	for _, m := range c.view.Members {
		size += 1 + len(m)
	}
	if size+1+len(name)+21 > c.maxFrame || len(c.view.Members) >= 1<<16-1 {
		return nil, byeGroupFull
	}
	sess := c.newSession()
	for sess == 0 || c.bySession[sess] != nil || c.tombs[sess] != 0 {
		sess = c.newSession()
	}
	m := &coreMember{
		id: c.nextID(name), session: sess, out: newSendState(),
		winMsgs: min(c.winMsgs, winMsgs), winBytes: min(c.winBytes, winBytes),
		downSince: now,
	}
	c.order = append(c.order, m)
	c.byID[m.id] = m
	c.bySession[sess] = m
	c.newView()
	return m, 0
}

// resume finds the member of a session coming back on a new link, and
// rewinds its stream to what it received.
func (c *coordCore) resume(session, delivered uint64) (*coreMember, byte, error) {
	m := c.bySession[session]
	if m == nil {
		if code := c.tombs[session]; code != 0 {
			return nil, code, nil
		}
		return nil, byeRemoved, nil
	}
	if err := m.out.rewind(delivered); err != nil {
		c.remove(m, byeProtocol)
		return nil, byeProtocol, err
	}
	return m, 0, nil
}

// connect and disconnect record a member's link state.
func (c *coordCore) connect(m *coreMember) { m.connected, m.inAcked = true, 0 }

func (c *coordCore) disconnect(m *coreMember, now time.Time) {
	if m.connected {
		m.connected, m.downSince = false, now
	}
}

// blocked reports whether a message of size bytes cannot be queued for m
// without overflowing its window. The window is also the retransmission
// buffer, so a disconnected member blocks senders just as a slow one does,
// until it comes back or is evicted.
func (c *coordCore) blocked(m *coreMember, size int) bool {
	return m.out.full(size, m.winMsgs, m.winBytes)
}

// evict removes a member whose window stayed full: a connected member did
// not keep up (it is told so now), a disconnected one fell behind (it is
// told when it comes back).
func (c *coordCore) evict(m *coreMember) {
	if m.connected {
		c.remove(m, byeEvicted)
	} else {
		c.remove(m, byeFellBehind)
	}
}

// remove takes m out of the group, remembering why for when it comes back,
// and installs a new view.
func (c *coordCore) remove(m *coreMember, code byte) {
	if c.byID[m.id] != m {
		return
	}
	delete(c.byID, m.id)
	delete(c.bySession, m.session)
	for i, x := range c.order {
		if x == m {
			c.order = append(c.order[:i], c.order[i+1:]...)
			break
		}
	}
	if len(c.tombOrder) == maxTombs {
		delete(c.tombs, c.tombOrder[0])
		c.tombOrder = c.tombOrder[1:]
	}
	c.tombs[m.session] = code
	c.tombOrder = append(c.tombOrder, m.session)
	m.bye = code
	m.out = sendState{}
	c.removed = append(c.removed, m)
	c.newView()
}

// newView installs the next view and queues it in every member's stream and
// the coordinator's own queue. Views bypass the window: membership must not
// wait for flow control.
func (c *coordCore) newView() {
	v := &View{ID: c.view.ID + 1, Members: make([]MemberID, 0, 1+len(c.order))}
	v.Members = append(v.Members, c.self)
	for _, m := range c.order {
		v.Members = append(v.Members, m.id)
	}
	c.view = *v
	p := &payload{kind: frameView, view: v}
	for _, m := range c.order {
		m.out.push(p)
	}
	c.emit(Event{Kind: EventView, View: *v})
}

// tick removes members that stayed disconnected longer than the failure
// timeout.
func (c *coordCore) tick(now time.Time) {
	for i := 0; i < len(c.order); {
		m := c.order[i]
		if !m.connected && now.Sub(m.downSince) >= c.failureTimeout {
			c.remove(m, byeRemoved)
			continue
		}
		i++
	}
}

// ack processes an acknowledgement from m and reports whether it freed room.
func (c *coordCore) ack(m *coreMember, seq uint64) (bool, error) {
	n, err := m.out.ack(seq)
	return n > 0, err
}

// String describes the member's session, for logs and test scripts.
func (m *coreMember) String() string {
	return fmt.Sprintf("%s(session %d, sent %d..%d, written to %d, received %d, connected %v)",
		m.id, m.session, m.out.base, m.out.next()-1, m.out.written-1, m.in, m.connected)
}
