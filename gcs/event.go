package gcs

import (
	"context"
	"sync"
)

// EventKind says what an Event carries.
type EventKind uint8

const (
	// EventMessage carries a message: Origin, Data and whether it was a
	// unicast.
	EventMessage EventKind = iota + 1
	// EventView carries a new View.
	EventView
	// EventNotice carries Err: one of ErrEvicted, ErrFellBehind, ErrRemoved,
	// ErrCoordinatorLost or ErrGroupClosed, wrapped with details.
	EventNotice
)

// String names the kind, for logs.
func (k EventKind) String() string {
	switch k {
	case EventMessage:
		return "message"
	case EventView:
		return "view"
	case EventNotice:
		return "notice"
	default:
		return "unknown"
	}
}

// Event is what Receive returns: a message, a view or a notice, in the order
// the member's stream holds them.
type Event struct {
	Kind EventKind
	// Origin is the member (or, for a message from a non-member, the
	// sender's node name) that sent the message.
	Origin MemberID
	// Unicast is set for a message sent to this member alone.
	Unicast bool
	// Data is the message body; the receiver owns it.
	Data []byte
	// View is the new membership, for EventView.
	View View
	// Err is the notice, for EventNotice.
	Err error

	seq    uint64 // sequence number in the member's stream (0 for local events)
	gen    uint64 // session generation the seq belongs to
	pooled *[]byte
	pool   *bufPool
}

// Release hands Data's buffer back for reuse by later messages, and clears
// Data. It is optional: without it the garbage collector reclaims the
// buffer; with it a busy receiver reads into warm memory and runs faster.
// Call it at most once per received event, and only when nothing (no copy of
// the Event, no slice of Data) uses the bytes any more.
func (e *Event) Release() {
	if e.pooled != nil {
		e.pool.put(e.pooled)
	}
	e.Data, e.pooled, e.pool = nil, nil, nil
}

// eventQueue is a group's queue of events for Receive, safe for one or more
// concurrent receivers.
type eventQueue struct {
	mu     sync.Mutex
	q      []Event
	head   int
	signal chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{signal: make(chan struct{}, 1)} }

func (e *eventQueue) push(ev Event) {
	e.mu.Lock()
	if e.head > 0 && e.head == len(e.q) {
		clear(e.q)
		e.q, e.head = e.q[:0], 0
	}
	e.q = append(e.q, ev)
	e.mu.Unlock()
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

func (e *eventQueue) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q) - e.head
}

// pop waits for an event.
func (e *eventQueue) pop(ctx context.Context, closed <-chan struct{}) (Event, error) {
	for {
		e.mu.Lock()
		if e.head < len(e.q) {
			ev := e.q[e.head]
			e.q[e.head] = Event{}
			e.head++
			left := len(e.q) - e.head
			if e.head > 1024 && e.head*2 > len(e.q) {
				n := copy(e.q, e.q[e.head:])
				clear(e.q[n:])
				e.q, e.head = e.q[:n], 0
			}
			e.mu.Unlock()
			if left > 0 { // wake the next receiver
				select {
				case e.signal <- struct{}{}:
				default:
				}
			}
			return ev, nil
		}
		e.mu.Unlock()
		select {
		case <-e.signal:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-closed:
			return Event{}, ErrClosed
		}
	}
}
