package gcs

import (
	"context"
	"fmt"
	"sync"
)

// Group is this node's handle on one group, as its coordinator (from
// Node.Create) or as a member (from Node.Join). It is safe for concurrent
// use.
//
// Buffers passed to Multicast and Send are referenced, not copied, until
// every member has acknowledged them: the caller must not modify them (nor
// the parts slice) after the call.
type Group struct {
	node   *Node
	name   string
	events *eventQueue

	ctx       context.Context // done when the group is closed
	cancel    context.CancelFunc
	closeOnce sync.Once

	c *coordinator // set for the coordinator's handle
	m *member      // set for a member's handle
}

func newGroup(n *Node, name string) *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{node: n, name: name, events: newEventQueue(), ctx: ctx, cancel: cancel}
}

// Name is the group's name.
func (g *Group) Name() string { return g.name }

// IsCoordinator reports whether this handle is the group's coordinator.
func (g *Group) IsCoordinator() bool { return g.c != nil }

// Self is this member's id in its current session (it changes when a member
// rejoins after a notice).
func (g *Group) Self() MemberID {
	if g.c != nil {
		return g.c.core.self
	}
	g.m.mu.Lock()
	defer g.m.mu.Unlock()
	return g.m.self
}

// View is the newest view this member has received; it may be ahead of the
// events Receive has returned so far.
func (g *Group) View() View {
	if g.c != nil {
		g.c.mu.Lock()
		defer g.c.mu.Unlock()
		return g.c.core.view
	}
	g.m.mu.Lock()
	defer g.m.mu.Unlock()
	return g.m.view
}

// Multicast sends a message, the concatenation of parts, to every other
// member of the current view, in FIFO order with this member's other
// messages. A sender does not receive its own multicasts.
//
// On a coordinator it waits while a connected member's window is full, at
// most SlowMemberTimeout, and then evicts that member; on a member it waits
// while its own window to the coordinator is full. ctx bounds either wait.
// A nil error means the message is queued and will reach every member that
// stays in the view, across reconnections.
func (g *Group) Multicast(ctx context.Context, parts ...[]byte) error {
	return g.send(ctx, "", parts)
}

// Send sends a message to one member of the current view, in FIFO order with
// this member's other messages to it. Waiting is as for Multicast. On the
// coordinator a destination outside the view is ErrNotMember; a member's
// unicast is checked by the coordinator when it relays it, and dropped if
// the destination has left by then.
func (g *Group) Send(ctx context.Context, to MemberID, parts ...[]byte) error {
	if to == "" {
		return fmt.Errorf("gcs: send to group %q: empty member id: %w", g.name, ErrNotMember)
	}
	return g.send(ctx, to, parts)
}

func (g *Group) send(ctx context.Context, to MemberID, parts [][]byte) error {
	size, err := g.node.checkSize(parts)
	if err != nil {
		return err
	}
	if g.c != nil {
		err = g.c.send(ctx, nil, newPayload(g.c.core.self, to, parts, size), nil)
	} else {
		err = g.m.send(ctx, to, parts, size)
	}
	if err != nil {
		return fmt.Errorf("gcs: send to group %q: %w", g.name, err)
	}
	return nil
}

// Pending returns how many events are queued for Receive: a receiver that
// batches its answers can tell whether more messages are already waiting.
func (g *Group) Pending() int { return g.events.len() }

// Receive returns the next event: a message, a view or a notice. After the
// group is closed it returns the events already queued, then ErrClosed.
func (g *Group) Receive(ctx context.Context) (Event, error) {
	ev, err := g.events.pop(ctx, g.ctx.Done())
	if err != nil {
		return ev, err
	}
	if g.c != nil {
		g.c.received()
	} else {
		g.m.received(ev)
	}
	return ev, nil
}

// Leave leaves the group. A member's messages sent before Leave are
// delivered first, and the others see a view without it. On the coordinator,
// Leave ends the group: every member gets ErrGroupClosed. ctx bounds the
// wait for the coordinator's acknowledgement; the group is closed either way.
func (g *Group) Leave(ctx context.Context) error {
	if g.c != nil {
		g.c.shutdown(ctx, byeGroupClosed)
		return nil
	}
	return g.m.leave(ctx)
}

// Close closes the group at once: a member simply disconnects (the
// coordinator removes it after the failure timeout), a coordinator ends the
// group as Leave does without waiting.
func (g *Group) Close() error {
	g.shutdown(byeGroupClosed)
	return nil
}

// shutdown closes the group without waiting for peers.
func (g *Group) shutdown(code byte) {
	if g.c != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		g.c.shutdown(ctx, code)
		return
	}
	g.m.close()
}

// markClosed closes the handle; it reports whether this call did it.
func (g *Group) markClosed() bool {
	first := false
	g.closeOnce.Do(func() {
		first = true
		g.cancel()
		g.node.forget(g)
	})
	return first
}
