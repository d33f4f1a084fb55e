package gcs

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// linkSource is the session a link carries: it says what to write and
// handles what is read. Both are called with no lock held.
type linkSource interface {
	// collect encodes into w what is due on l: sequenced messages not yet
	// written, an acknowledgement, a bye. heartbeat asks for a frame even if
	// nothing else is due. more means collect has more to give at once;
	// final means the link must close after this write.
	collect(l *link, w *frameWriter, heartbeat bool) (more, final bool)
	// handle processes one frame read from l; an error closes the link.
	handle(l *link, f *frame) error
	// down is called once, after the link's reader has stopped.
	down(l *link, err error)
}

// link drives one connection: a reader (the goroutine that calls run) and a
// writer goroutine that coalesces everything due into as few writes as
// possible, sends heartbeats when idle and closes the link when the peer
// has been silent for the failure timeout.
type link struct {
	node *Node
	conn net.Conn
	br   *bufio.Reader
	src  linkSource
	log  *slog.Logger

	wake       chan struct{}
	done       chan struct{}
	closeOnce  sync.Once
	readerDone chan struct{}
	rx         atomic.Uint64 // frames read, for failure detection
	closing    atomic.Bool   // the last frame is written: the reader only drains
	heardAt    atomic.Int64  // when the peer was last heard from (UnixNano), per heartbeat tick
}

func newLink(n *Node, conn net.Conn, br *bufio.Reader, src linkSource, log *slog.Logger) *link {
	return &link{
		node: n, conn: conn, br: br, src: src, log: log,
		wake: make(chan struct{}, 1), done: make(chan struct{}), readerDone: make(chan struct{}),
	}
}

// notify asks the writer to collect.
func (l *link) notify() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		close(l.done)
		l.conn.Close()
	})
}

// linger ends the link after its last frame (a bye) without losing it:
// closing a TCP connection with unread input resets it, and the peer may
// then never read the bye. So the link half-closes, and the reader drains
// until the peer closes or a heartbeat interval passes.
func (l *link) linger() {
	l.closing.Store(true)
	if cw, ok := l.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if l.conn.SetReadDeadline(time.Now().Add(l.node.cfg.HeartbeatInterval)) != nil {
		l.close()
	}
}

func (l *link) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// run starts the writer and reads until the link fails or is closed.
func (l *link) run() {
	writerDone := make(chan struct{})
	l.node.wg.Add(1)
	go func() {
		defer l.node.wg.Done()
		defer close(writerDone)
		l.writeLoop()
	}()
	dec := newDecoder(l.node.cfg.MaxMessage)
	dec.pool = &l.node.pool
	var f frame
	var err error
	for {
		if err = dec.read(l.br, &f); err != nil {
			break
		}
		l.rx.Add(1)
		if l.closing.Load() {
			continue
		}
		if err = l.src.handle(l, &f); err != nil {
			break
		}
	}
	if l.closed() || l.closing.Load() || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		l.log.Debug("gcs: link closed", "err", err)
	} else {
		l.log.Warn("gcs: link failed", "err", err)
	}
	l.close()
	<-writerDone
	l.src.down(l, err)
	close(l.readerDone)
}

func (l *link) writeLoop() {
	cfg := &l.node.cfg
	t := time.NewTicker(cfg.HeartbeatInterval)
	defer t.Stop()
	var w frameWriter
	lastRx, lastRxAt := l.rx.Load(), time.Now()
	l.heardAt.Store(lastRxAt.UnixNano())
	wrote, heartbeat := false, false
	for {
		select {
		case <-l.done:
			return
		case <-l.wake:
		case now := <-t.C:
			if rx := l.rx.Load(); rx != lastRx {
				lastRx, lastRxAt = rx, now
				l.heardAt.Store(now.UnixNano())
			} else if now.Sub(lastRxAt) >= cfg.FailureTimeout {
				l.log.Warn("gcs: peer silent, closing link", "silent", now.Sub(lastRxAt))
				l.close()
				return
			}
			heartbeat, wrote = !wrote, false
		}
		for {
			more, final := l.src.collect(l, &w, heartbeat)
			heartbeat = false
			if w.size > 0 {
				// A peer that stops reading must not block the writer (and
				// with it failure detection) for longer than the timeout.
				_ = l.conn.SetWriteDeadline(time.Now().Add(cfg.FailureTimeout))
				if err := w.flush(l.conn); err != nil {
					l.close()
					return
				}
				wrote = true
			}
			if final {
				l.linger()
				return
			}
			if !more {
				break
			}
		}
	}
}
