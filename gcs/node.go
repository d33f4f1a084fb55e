package gcs

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Node is one participant in group communication: it coordinates the groups
// it creates, is a member of the groups it joins, and serves its StreamLayer.
// Any number of Nodes may live in one process. A Node is safe for concurrent
// use; Close stops every goroutine it started.
type Node struct {
	cfg      Config
	layer    StreamLayer
	log      *slog.Logger
	maxFrame int

	randMu sync.Mutex
	rng    *rand.Rand

	mu      sync.Mutex
	closed  bool
	coord   map[string]*Group // groups this node coordinates, by name
	joined  map[*Group]struct{}
	pending map[net.Conn]struct{} // accepted connections still in their handshake

	done chan struct{}
	wg   sync.WaitGroup

	pool bufPool // receive buffers handed back by Event.Release
}

// NewNode validates cfg and starts serving layer, which the Node owns from
// then on (Close closes it).
func NewNode(cfg Config, layer StreamLayer) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if layer == nil {
		return nil, errors.New("gcs: NewNode: nil StreamLayer: pass a listener and dialer such as tcptransport's")
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg: cfg, layer: layer, log: cfg.Logger, rng: cfg.Rand,
		maxFrame: cfg.MaxMessage + frameOverhead,
		coord:    map[string]*Group{}, joined: map[*Group]struct{}{}, pending: map[net.Conn]struct{}{},
		done: make(chan struct{}),
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.log = n.log.With("gcs_node", cfg.Name)
	if n.rng == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		n.rng = rand.New(rand.NewChaCha8(seed))
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.acceptLoop()
	}()
	return n, nil
}

// Addr is the address other nodes reach this one at.
func (n *Node) Addr() net.Addr { return n.layer.Addr() }

// Name is the node's configured name.
func (n *Node) Name() string { return n.cfg.Name }

func (n *Node) random() uint64 {
	n.randMu.Lock()
	defer n.randMu.Unlock()
	return n.rng.Uint64()
}

// jitter returns a duration in [d/2, d).
func (n *Node) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	n.randMu.Lock()
	defer n.randMu.Unlock()
	return d/2 + time.Duration(n.rng.Int64N(int64(d/2)+1))
}

// Close closes every group of the node (members see their coordinator go,
// coordinators see their members fail), stops serving and waits for every
// goroutine the node started.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	close(n.done)
	groups := make([]*Group, 0, len(n.coord)+len(n.joined))
	for _, g := range n.coord {
		groups = append(groups, g)
	}
	for g := range n.joined {
		groups = append(groups, g)
	}
	for c := range n.pending {
		c.Close()
	}
	n.mu.Unlock()
	err := n.layer.Close()
	for _, g := range groups {
		g.shutdown(byeClosing)
	}
	n.wg.Wait()
	return err
}

func (n *Node) acceptLoop() {
	for {
		conn, err := n.layer.Accept()
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n.log.Warn("gcs: accept failed", "err", err)
			select {
			case <-n.done:
				return
			case <-time.After(n.cfg.HeartbeatInterval):
			}
			continue
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			conn.Close()
			return
		}
		n.pending[conn] = struct{}{}
		n.wg.Add(1)
		n.mu.Unlock()
		go func() {
			defer n.wg.Done()
			n.serve(conn)
		}()
	}
}

// serve runs the coordinator side of a handshake, then the session.
func (n *Node) serve(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(n.cfg.FailureTimeout))
	br := bufio.NewReaderSize(conn, 64<<10)
	var hello frame
	err := newDecoder(n.cfg.MaxMessage).read(br, &hello)
	if err == nil && hello.typ != frameHello {
		err = protoErr("first frame has type %d, want hello", hello.typ)
	}
	n.mu.Lock()
	delete(n.pending, conn)
	g := n.coord[string(hello.group)]
	closed := n.closed
	n.mu.Unlock()
	refuse := func(code byte, text string) {
		var w frameWriter
		w.bye(code, text)
		_ = w.flush(conn)
		conn.Close()
	}
	switch {
	case err != nil:
		n.log.Warn("gcs: bad handshake", "remote", conn.RemoteAddr(), "err", err)
		refuse(byeProtocol, err.Error())
		return
	case closed:
		refuse(byeClosing, "node closing")
		return
	case hello.version != protocolVersion:
		refuse(byeIncompatible, fmt.Sprintf("protocol version %d, this node speaks %d", hello.version, protocolVersion))
		return
	case int(hello.maxMessage) != n.cfg.MaxMessage:
		refuse(byeIncompatible, fmt.Sprintf("MaxMessage %d, the coordinator uses %d: set the same on every node", hello.maxMessage, n.cfg.MaxMessage))
		return
	case g == nil:
		refuse(byeNoSuchGroup, fmt.Sprintf("node %s coordinates no group %q", n.cfg.Name, hello.group))
		return
	}
	if hello.flags&flagOpen != 0 {
		g.c.serveOpen(conn, br, string(hello.name))
		return
	}
	g.c.attach(conn, br, &hello)
}

// Create makes this node the coordinator of a new group and its first
// member. The group lives as long as this node keeps it: members join it
// through this node's address.
func (n *Node) Create(ctx context.Context, group string) (*Group, error) {
	if err := validGroupName(group); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("gcs: create group %q: %w", group, ErrClosed)
	}
	if n.coord[group] != nil {
		return nil, fmt.Errorf("gcs: create group %q: %w", group, ErrGroupExists)
	}
	g := newCoordinatorGroup(n, group)
	n.coord[group] = g
	return g, nil
}

// Join joins the group coordinated by the node at contact and returns once
// the coordinator accepted the member; the first event is the view that
// includes it.
func (n *Node) Join(ctx context.Context, group, contact string) (*Group, error) {
	if err := validGroupName(group); err != nil {
		return nil, err
	}
	g := newMemberGroup(n, group, contact)
	conn, br, err := g.m.connect(ctx)
	if err != nil {
		g.cancel()
		return nil, fmt.Errorf("gcs: join group %q at %s: %w", group, contact, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		conn.Close()
		return nil, fmt.Errorf("gcs: join group %q: %w", group, ErrClosed)
	}
	n.joined[g] = struct{}{}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		g.m.run(conn, br)
	}()
	return g, nil
}

func (n *Node) forget(g *Group) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.coord[g.name] == g {
		delete(n.coord, g.name)
	}
	delete(n.joined, g)
}

// byeError is a bye received from the peer.
type byeError struct {
	code byte
	text string
}

func (e *byeError) Error() string { return fmt.Sprintf("%v: %s", byeErr(e.code), e.text) }
func (e *byeError) Unwrap() error { return byeErr(e.code) }

// dial opens a connection to contact and exchanges hello and welcome.
func (n *Node) dial(ctx context.Context, contact string, hello *frame) (net.Conn, *bufio.Reader, *frame, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.FailureTimeout)
	defer cancel()
	conn, err := n.layer.Dial(ctx, contact)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("dial: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	hello.version = protocolVersion
	hello.maxMessage = uint32(n.cfg.MaxMessage)
	hello.winMsgs = uint32(n.cfg.WindowMessages)
	hello.winBytes = uint64(n.cfg.WindowBytes)
	hello.name = []byte(n.cfg.Name)
	var w frameWriter
	w.hello(hello)
	fail := func(err error) (net.Conn, *bufio.Reader, *frame, error) {
		conn.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, nil, nil, err
	}
	if err := w.flush(conn); err != nil {
		return fail(fmt.Errorf("send hello: %w", err))
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	f := new(frame)
	if err := newDecoder(n.cfg.MaxMessage).read(br, f); err != nil {
		return fail(fmt.Errorf("read welcome: %w", err))
	}
	switch f.typ {
	case frameWelcome:
		f.name = append([]byte(nil), f.name...)
	case frameBye:
		return fail(&byeError{code: f.code, text: string(f.text)})
	default:
		return fail(protoErr("answer to hello has type %d", f.typ))
	}
	if !stop() {
		return fail(ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, f, nil
}

// SendToGroup sends one message to every member of a group this node need
// not belong to (an open group), through the group's coordinator at
// contact. It returns once the coordinator has queued the message for every
// member; members see it with Origin set to this node's name.
func (n *Node) SendToGroup(ctx context.Context, contact, group string, parts ...[]byte) error {
	if err := validGroupName(group); err != nil {
		return err
	}
	size, err := n.checkSize(parts)
	if err != nil {
		return err
	}
	select {
	case <-n.done:
		return fmt.Errorf("gcs: send to group %q: %w", group, ErrClosed)
	default:
	}
	conn, br, _, err := n.dial(ctx, contact, &frame{flags: flagOpen, group: []byte(group)})
	if err != nil {
		return fmt.Errorf("gcs: send to group %q at %s: %w", group, contact, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_ = conn.SetDeadline(time.Now().Add(n.cfg.FailureTimeout))
	var w frameWriter
	w.message(1, newPayload("", "", parts, size))
	if err := w.flush(conn); err != nil {
		return fmt.Errorf("gcs: send to group %q: %w", group, err)
	}
	dec := newDecoder(n.cfg.MaxMessage)
	var f frame
	for {
		if err := dec.read(br, &f); err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("gcs: send to group %q: awaiting acknowledgement: %w", group, err)
		}
		switch {
		case f.typ == frameAck && f.seq >= 1:
			return nil
		case f.typ == frameBye:
			return fmt.Errorf("gcs: send to group %q: %w", group, &byeError{code: f.code, text: string(f.text)})
		}
	}
}

// checkSize returns the total size of parts or ErrMessageTooLarge.
func (n *Node) checkSize(parts [][]byte) (int, error) {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	if size > n.cfg.MaxMessage {
		return 0, fmt.Errorf("gcs: message of %d bytes exceeds MaxMessage %d: %w", size, n.cfg.MaxMessage, ErrMessageTooLarge)
	}
	return size, nil
}
