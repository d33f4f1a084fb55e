package clientproto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/repld/repld/wire"
)

// HeaderLen is the length of a frame's header.
const HeaderLen = 4

// Errors of the transport.
var (
	// ErrFrame is a frame that breaks the format: an empty frame, a length
	// above the limit, or a connection that ends inside a frame.
	ErrFrame = errors.New("clientproto: bad frame")
	// ErrQueueFull: the peer does not read fast enough; the connection
	// must be dropped.
	ErrQueueFull = errors.New("clientproto: send queue full")
	// ErrWriterClosed: Send after Close, or after a write failed.
	ErrWriterClosed = errors.New("clientproto: writer closed")
)

// ReadFrame reads one frame of at most max bytes from r into a new buffer
// and returns its contents. It returns io.EOF if r ends before a frame
// starts; any other failure wraps ErrFrame or is r's error.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var h [HeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: connection ended inside a frame header", ErrFrame)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: empty frame", ErrFrame)
	case uint64(n) > uint64(max):
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d", ErrFrame, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: connection ended inside a frame of %d bytes", ErrFrame, n)
		}
		return nil, err
	}
	return b, nil
}

// AppendFrame encodes m as a frame: the returned head (appended to dst)
// holds the frame header and the message head, and payload is m's payload
// slice itself (nil for kinds without one), to be written after head.
func AppendFrame(c *wire.Codec, dst []byte, m wire.Message) (head, payload []byte, err error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	head, payload, err = c.AppendHead(dst, m)
	if err != nil {
		return dst[:start], nil, err
	}
	binary.BigEndian.PutUint32(head[start:], uint32(len(head)-start-HeaderLen+len(payload)))
	return head, payload, nil
}

// Frame is an encoded frame, ready to be queued on any number of Writers:
// a message sent to many peers (an invalidation) is encoded once. Its
// buffers are only read, never modified, by the Writers.
type Frame struct {
	head, payload []byte
}

// EncodeFrame encodes m as a Frame. m's payload is not copied: it must
// stay unmodified until every Writer it was queued on has written it.
func EncodeFrame(c *wire.Codec, m wire.Message) (Frame, error) {
	head, payload, err := AppendFrame(c, make([]byte, 0, 64), m)
	if err != nil {
		return Frame{}, err
	}
	return Frame{head: head, payload: payload}, nil
}

// Writer writes frames to a connection, batching the frames queued
// meanwhile into one vectored write. Send and SendSoon queue and leave the
// writing to the Writer's goroutine, which lets the goroutines that are
// ready run first so that what they queue shares its write; SendWait
// writes itself when no write is in progress (saving a goroutine switch
// per message) and otherwise queues for the write in progress to pick up.
// It is safe for concurrent use.
type Writer struct {
	conn         io.WriteCloser
	codec        *wire.Codec
	maxQueued    int
	writeTimeout time.Duration

	mu      sync.Mutex
	queue   net.Buffers
	queued  int
	spare   net.Buffers // the last batch's slice, emptied, for the next queue
	writing bool        // a goroutine is writing; it writes the queue too before it stops
	// out is the batch being written, consumed as it is; only the
	// writing goroutine uses it.
	out     net.Buffers
	err     error
	closing bool
	space   chan struct{} // closed, and replaced, when the queue is taken and someone waits
	waiting bool          // someone waits on space
	wake    chan struct{}
	done    chan struct{}
}

// NewWriter starts a Writer on conn. maxQueued bounds the bytes waiting to
// be written (unless the queue is empty). writeTimeout, if positive and
// conn has SetWriteDeadline (a net.Conn), bounds each write, so a peer that
// stops reading cannot block senders for ever. If a write fails the Writer
// closes conn, so the reader of the connection ends too.
func NewWriter(conn io.WriteCloser, c *wire.Codec, maxQueued int, writeTimeout time.Duration) *Writer {
	w := &Writer{
		conn: conn, codec: c, maxQueued: maxQueued, writeTimeout: writeTimeout,
		space: make(chan struct{}), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go w.run()
	return w
}

// Send encodes m and queues it for the Writer's goroutine, never blocking:
// for a peer that must not be waited for. If the queue is full it fails
// with ErrQueueFull, and so does every later call: drop the connection. An
// encoding error (a message beyond the codec's limits) leaves the Writer
// usable. m's payload must stay unmodified until written.
func (w *Writer) Send(m wire.Message) error {
	if err := w.enqueue(context.Background(), false, m); err != nil {
		return err
	}
	w.wakeUp()
	return nil
}

// Hold is Send without waking the Writer's goroutine: m goes out with the
// next message sent, which the caller sends at once (an answer that m
// must precede, in the same write).
func (w *Writer) Hold(m wire.Message) error {
	return w.enqueue(context.Background(), false, m)
}

// SendFrame is Send for a message encoded already.
func (w *Writer) SendFrame(f Frame) error {
	if err := w.enqueueFrame(context.Background(), false, f); err != nil {
		return err
	}
	w.wakeUp()
	return nil
}

// HoldFrame is Hold for a message encoded already.
func (w *Writer) HoldFrame(f Frame) error {
	return w.enqueueFrame(context.Background(), false, f)
}

// wakeUp makes the Writer's goroutine write the queue, unless it is due
// to already.
func (w *Writer) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// SendWait is Send for a sender that may block: while the queue is full it
// waits for room (or for ctx to end), and it writes the queue itself when
// no other goroutine is writing.
func (w *Writer) SendWait(ctx context.Context, m wire.Message) error {
	if err := w.enqueue(ctx, true, m); err != nil {
		return err
	}
	w.flush()
	return nil
}

// SendSoon is SendWait that leaves the writing to the Writer's goroutine,
// which writes m with whatever else is queued by the time it runs: for an
// answer that other answers, about to be sent, may share a write with.
func (w *Writer) SendSoon(ctx context.Context, m wire.Message) error {
	if err := w.enqueue(ctx, true, m); err != nil {
		return err
	}
	w.wakeUp()
	return nil
}

// Queue is SendWait for a message nobody waits for an answer to yet: it
// only queues m, to go out with the next message sent (at the latest once
// QueueFlushBytes are queued), so that a transaction's begin and small
// stores share one write with its vote.
func (w *Writer) Queue(ctx context.Context, m wire.Message) error {
	if err := w.enqueue(ctx, true, m); err != nil {
		return err
	}
	w.mu.Lock()
	full := w.queued >= QueueFlushBytes
	w.mu.Unlock()
	if full {
		w.flush()
	}
	return nil
}

// QueueFlushBytes is how much Queue lets accumulate before writing.
const QueueFlushBytes = 64 << 10

// enqueue encodes and queues m; if the queue is full and wait is false that
// is an error, otherwise it writes the queue itself if nobody is writing, or waits for
// room.
func (w *Writer) enqueue(ctx context.Context, wait bool, m wire.Message) error {
	f, err := EncodeFrame(w.codec, m)
	if err != nil {
		return err
	}
	return w.enqueueFrame(ctx, wait, f)
}

// enqueueFrame is enqueue for an encoded frame.
func (w *Writer) enqueueFrame(ctx context.Context, wait bool, f Frame) error {
	size := len(f.head) + len(f.payload)
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		switch {
		case w.err != nil:
			return w.err
		case w.closing:
			return ErrWriterClosed
		case w.queued > 0 && w.queued+size > w.maxQueued:
			if !wait {
				w.err = fmt.Errorf("%w: %d bytes waiting, limit %d", ErrQueueFull, w.queued, w.maxQueued)
				return w.err
			}
			space := w.space
			w.waiting = true
			idle := !w.writing
			w.mu.Unlock()
			if idle {
				w.flush()
			} else {
				select {
				case <-space:
				case <-ctx.Done():
				}
			}
			w.mu.Lock()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue
		}
		w.queue = append(w.queue, f.head)
		if len(f.payload) > 0 {
			w.queue = append(w.queue, f.payload)
		}
		w.queued += size
		return nil
	}
}

// flush writes the queue until it is empty, unless another goroutine is
// writing (which then writes what was queued too).
func (w *Writer) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.writing {
		return
	}
	w.writing = true
	for len(w.queue) > 0 && w.err == nil {
		bufs := w.queue
		w.queue, w.queued = w.spare, 0
		w.spare = nil
		w.roomLocked()
		w.mu.Unlock()
		err := w.write(bufs)
		clear(bufs) // the frames are written: do not keep them alive
		w.mu.Lock()
		if w.spare == nil && cap(bufs) <= maxSpare {
			w.spare = bufs[:0]
		}
		if err != nil {
			w.err = fmt.Errorf("%w: write: %v", ErrWriterClosed, err)
			w.roomLocked()
			_ = w.conn.Close()
		}
	}
	w.writing = false
	if w.closing {
		// Close waits for the queue to be written: tell run it is.
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// maxSpare bounds the batch slice a Writer keeps for reuse, so one burst
// of small frames does not pin a large slice.
const maxSpare = 1024

// write writes one batch, bounded by the write timeout. It consumes a
// copy of bufs' slice header (w.out, which saves allocating one per
// write), so bufs itself still holds the batch afterwards.
func (w *Writer) write(bufs net.Buffers) error {
	if d, ok := w.conn.(interface{ SetWriteDeadline(time.Time) error }); ok && w.writeTimeout > 0 {
		if err := d.SetWriteDeadline(time.Now().Add(w.writeTimeout)); err != nil {
			return err
		}
	}
	w.out = bufs
	_, err := w.out.WriteTo(w.conn)
	w.out = nil
	return err
}

// roomLocked wakes the senders waiting for room in the queue.
func (w *Writer) roomLocked() {
	if w.waiting {
		close(w.space)
		w.space = make(chan struct{})
		w.waiting = false
	}
}

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		// What is queued was sent by someone who does not wait for it:
		// let the goroutines that are ready run first, so that what they
		// queue meanwhile shares this write instead of taking one each.
		runtime.Gosched()
		w.flush()
		w.mu.Lock()
		stop := w.err != nil || w.closing && len(w.queue) == 0 && !w.writing
		w.mu.Unlock()
		if stop {
			return
		}
	}
}

// Close writes what is queued, then stops the Writer's goroutine. It does
// not close the connection; closing the connection first drops what is
// queued instead of waiting for a peer that may not read. A SendWait that
// is writing may still be doing so when Close returns.
func (w *Writer) Close() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.wakeUp()
	<-w.done
}
