package gcs

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
)

// The frame format is described in doc.go. Every integer is big-endian.
const (
	protocolVersion = 1

	frameHello   byte = 1
	frameWelcome byte = 2
	frameBye     byte = 3
	frameAck     byte = 4
	frameData    byte = 5
	frameView    byte = 6
	frameLeave   byte = 7

	// flagUnicast marks a data frame sent to one member.
	flagUnicast byte = 1
	// flagOpen marks a hello from a non-member that only sends.
	flagOpen byte = 1

	// frameOverhead is what a frame may hold beyond MaxMessage bytes of
	// body: type, sequence number, flags and two identifiers.
	frameOverhead = 1 + 8 + 1 + 2*(1+MaxNameLen)
	maxByeText    = 1024
	helloFixedLen = 1 + 1 + 4 + 4 + 8 + 8 + 8 // after the type byte, before the names
)

// Bye codes: why a peer ends a session or refuses a hello.
const (
	byeEvicted      byte = 1
	byeFellBehind   byte = 2
	byeRemoved      byte = 3
	byeLeft         byte = 4
	byeGroupClosed  byte = 5
	byeNoSuchGroup  byte = 6
	byeIncompatible byte = 7
	byeGroupFull    byte = 8
	byeProtocol     byte = 9
	byeClosing      byte = 10
	maxByeCode           = byeClosing
)

// byeErr maps a bye code to the sentinel a caller branches on.
func byeErr(code byte) error {
	switch code {
	case byeEvicted:
		return ErrEvicted
	case byeFellBehind:
		return ErrFellBehind
	case byeRemoved:
		return ErrRemoved
	case byeGroupClosed, byeLeft:
		return ErrGroupClosed
	case byeNoSuchGroup:
		return ErrNoSuchGroup
	case byeIncompatible:
		return ErrIncompatible
	case byeGroupFull:
		return ErrGroupFull
	case byeClosing:
		return ErrCoordinatorLost
	default:
		return ErrProtocol
	}
}

// frame is one decoded frame. Which fields are meaningful depends on typ.
// Byte-slice fields alias the buffer the frame was read into.
type frame struct {
	typ byte
	// seq: ack, data, view and leave; in welcome, the last sequence number
	// the coordinator processed from the member.
	seq uint64
	// hello: version, flags, maxMessage, window, session, delivered, group, name.
	version    byte
	flags      byte
	maxMessage uint32
	winMsgs    uint32
	winBytes   uint64
	session    uint64
	delivered  uint64
	group      []byte
	name       []byte // hello: node name; welcome: member id
	// data
	origin, dest []byte
	payload      []byte
	pooled       *[]byte // the pool buffer payload is in, if any
	// view
	viewID  uint64
	members [][]byte
	// bye
	code byte
	text []byte
}

// decoder reads frames with the limits of one Node.
type decoder struct {
	maxMessage int
	maxFrame   int
	scratch    []byte // reused for every frame but data frames
	members    [][]byte
	slab       []byte   // small data frames are carved from it
	pool       *bufPool // large data frames come from it; nil: allocate
}

// slabSize is the block small data frames are carved from, so that one
// allocation serves many messages. A message the application keeps keeps
// its block alive.
const slabSize = 256 << 10

// alloc returns n fresh bytes for a data frame, and the pool handle when they
// come from the pool.
func (d *decoder) alloc(n int) ([]byte, *[]byte) {
	if n >= minPooled && d.pool != nil {
		h := d.pool.get(n)
		return (*h)[:n], h
	}
	if n > slabSize/8 {
		return make([]byte, n), nil
	}
	if len(d.slab) < n {
		d.slab = make([]byte, slabSize)
	}
	b := d.slab[:n:n]
	d.slab = d.slab[n:]
	return b, nil
}

// bufPool recycles large receive buffers in power-of-two size classes.
// Reading into a recently used buffer is much faster than into fresh
// memory, so a receiver that calls Event.Release gets more throughput.
type bufPool struct {
	classes [28]sync.Pool
	// used is set by the first put: until then the application is not
	// releasing, and buffers are allocated at their exact size.
	used atomic.Bool
}

const minPooled = 8 << 10

func poolClass(n int) int { return bits.Len(uint(n - 1)) }

func (p *bufPool) get(n int) *[]byte {
	c := poolClass(n)
	if c >= len(p.classes) || !p.used.Load() {
		b := make([]byte, n)
		return &b
	}
	if h, ok := p.classes[c].Get().(*[]byte); ok {
		return h
	}
	b := make([]byte, 1<<c)
	return &b
}

func (p *bufPool) put(h *[]byte) {
	if !p.used.Load() {
		p.used.Store(true)
	}
	c := poolClass(cap(*h))
	if c < len(p.classes) && cap(*h) == 1<<c {
		*h = (*h)[:cap(*h)]
		p.classes[c].Put(h)
	}
}

func newDecoder(maxMessage int) *decoder {
	return &decoder{maxMessage: maxMessage, maxFrame: maxMessage + frameOverhead}
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// read reads one frame. A data frame's payload is a fresh buffer the caller
// may keep; every other byte slice is valid until the next read.
func (d *decoder) read(r *bufio.Reader, f *frame) error {
	head, err := r.Peek(5)
	if err != nil {
		if len(head) == 0 && err == io.EOF {
			return io.EOF
		}
		return fmt.Errorf("gcs: read frame header: %w", noEOF(err))
	}
	n := int(binary.BigEndian.Uint32(head))
	if n == 0 {
		return protoErr("empty frame")
	}
	if n > d.maxFrame {
		return fmt.Errorf("%w: frame of %d bytes exceeds the limit of %d (MaxMessage %d plus %d of header): %w",
			ErrProtocol, n, d.maxFrame, d.maxMessage, frameOverhead, ErrMessageTooLarge)
	}
	var buf []byte
	if head[4] == frameData {
		buf, f.pooled = d.alloc(n)
	} else {
		if cap(d.scratch) < n {
			d.scratch = make([]byte, n)
		}
		buf = d.scratch[:n]
	}
	if _, err := r.Discard(4); err != nil {
		return fmt.Errorf("gcs: read frame: %w", err)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("gcs: read frame of %d bytes: %w", n, noEOF(err))
	}
	pooled := f.pooled
	err = d.decode(buf, f)
	f.pooled = pooled
	if err != nil && pooled != nil {
		d.pool.put(pooled)
		f.pooled = nil
	}
	return err
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decode parses the bytes of one frame after its length prefix. It is strict:
// unknown types, flags or codes, short or trailing bytes are errors.
func (d *decoder) decode(b []byte, f *frame) error {
	*f = frame{typ: b[0]}
	p := parser{b: b[1:]}
	switch f.typ {
	case frameHello:
		f.version = p.u8()
		f.flags = p.u8()
		f.maxMessage = p.u32()
		f.winMsgs = p.u32()
		f.winBytes = p.u64()
		f.session = p.u64()
		f.delivered = p.u64()
		f.group = p.str8()
		f.name = p.str8()
		if p.err == nil && f.flags&^flagOpen != 0 {
			return protoErr("hello with unknown flags %#x", f.flags)
		}
		if p.err == nil && (len(f.group) == 0 || len(f.name) == 0) {
			return protoErr("hello with an empty group or node name")
		}
	case frameWelcome:
		f.session = p.u64()
		f.seq = p.u64()
		f.name = p.str8()
		if p.err == nil && len(f.name) == 0 {
			return protoErr("welcome with an empty member id")
		}
	case frameBye:
		f.code = p.u8()
		f.text = p.str16()
		if p.err == nil && (f.code == 0 || f.code > maxByeCode) {
			return protoErr("bye with unknown code %d", f.code)
		}
		if p.err == nil && len(f.text) > maxByeText {
			return protoErr("bye text of %d bytes exceeds %d", len(f.text), maxByeText)
		}
	case frameAck, frameLeave:
		f.seq = p.u64()
	case frameData:
		f.seq = p.u64()
		f.flags = p.u8()
		f.origin = p.str8()
		f.dest = p.str8()
		if p.err != nil {
			break
		}
		if f.flags&^flagUnicast != 0 {
			return protoErr("data frame with unknown flags %#x", f.flags)
		}
		if (f.flags&flagUnicast != 0) != (len(f.dest) != 0) {
			return protoErr("data frame: unicast flag %v with destination %q", f.flags&flagUnicast != 0, f.dest)
		}
		if len(p.b) > d.maxMessage {
			return fmt.Errorf("%w: received message of %d bytes exceeds MaxMessage %d: %w",
				ErrProtocol, len(p.b), d.maxMessage, ErrMessageTooLarge)
		}
		f.payload, p.b = p.b, nil
	case frameView:
		f.seq = p.u64()
		f.viewID = p.u64()
		n := int(p.u16())
		if p.err != nil {
			break
		}
		if n == 0 {
			return protoErr("view with no members")
		}
		d.members = d.members[:0]
		for range n {
			m := p.str8()
			if p.err != nil {
				break
			}
			if len(m) == 0 {
				return protoErr("view with an empty member id")
			}
			d.members = append(d.members, m)
		}
		f.members = d.members
	default:
		return protoErr("unknown frame type %d", f.typ)
	}
	if p.err != nil {
		return protoErr("frame type %d: %v", f.typ, p.err)
	}
	if len(p.b) != 0 {
		return protoErr("frame type %d has %d trailing bytes", f.typ, len(p.b))
	}
	if (f.typ == frameData || f.typ == frameView || f.typ == frameLeave) && f.seq == 0 {
		return protoErr("frame type %d with sequence number 0", f.typ)
	}
	return nil
}

// parser consumes fields; the first short read sets err and every later
// read returns zero.
type parser struct {
	b   []byte
	err error
}

func (p *parser) take(n int) []byte {
	if p.err != nil {
		return nil
	}
	if len(p.b) < n {
		p.err = fmt.Errorf("truncated: need %d bytes, have %d", n, len(p.b))
		return nil
	}
	v := p.b[:n]
	p.b = p.b[n:]
	return v
}

func (p *parser) u8() byte {
	if v := p.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (p *parser) u16() uint16 {
	if v := p.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (p *parser) u32() uint32 {
	if v := p.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (p *parser) u64() uint64 {
	if v := p.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (p *parser) str8() []byte {
	n := p.u8()
	return p.take(int(n))
}

func (p *parser) str16() []byte {
	n := p.u16()
	return p.take(int(n))
}

// frameWriter gathers encoded frames for one write. Headers and small bodies
// are copied into reusable chunks; large bodies are referenced, not copied,
// and go out with the rest in one vectored write where the conn supports it.
type frameWriter struct {
	chunks   [][]byte // reusable buffers; chunks[cur] is being filled
	cur      int
	segStart int // start in chunks[cur] of bytes not yet in bufs
	bufs     net.Buffers
	backing  net.Buffers
	size     int // bytes gathered
	frames   int
}

const (
	chunkSize = 64 << 10
	// largePart is the body size from which a part is referenced rather
	// than copied: below it a copy is cheaper than another iovec.
	largePart = 4 << 10
	// writeBudget is how many bytes a writer gathers before writing, so a
	// burst of small frames shares a system call without delaying the
	// first byte too long.
	writeBudget = 256 << 10
)

func (w *frameWriter) chunk() []byte {
	if len(w.chunks) == 0 {
		w.chunks = append(w.chunks, make([]byte, 0, chunkSize))
	}
	return w.chunks[w.cur]
}

// reserve makes room for n more copied bytes and returns the current chunk.
func (w *frameWriter) reserve(n int) []byte {
	c := w.chunk()
	if len(c)+n <= cap(c) {
		return c
	}
	w.cut()
	w.cur++
	if w.cur == len(w.chunks) {
		w.chunks = append(w.chunks, make([]byte, 0, max(chunkSize, n)))
	} else if cap(w.chunks[w.cur]) < n {
		w.chunks[w.cur] = make([]byte, 0, n)
	}
	w.segStart = 0
	return w.chunks[w.cur]
}

// cut moves the copied bytes not yet in bufs into bufs.
func (w *frameWriter) cut() {
	c := w.chunk()
	if len(c) > w.segStart {
		w.bufs = append(w.bufs, c[w.segStart:len(c):len(c)])
		w.segStart = len(c)
	}
}

func (w *frameWriter) copyBytes(b []byte) {
	c := w.reserve(len(b))
	w.chunks[w.cur] = append(c, b...)
	w.size += len(b)
}

func (w *frameWriter) part(b []byte) {
	if len(b) < largePart {
		w.copyBytes(b)
		return
	}
	w.cut()
	w.bufs = append(w.bufs, b)
	w.size += len(b)
}

// header appends a frame's length prefix and fixed fields (built by fill
// into at most max bytes) for a frame whose body after them has bodyLen bytes.
func (w *frameWriter) header(max, bodyLen int, fill func(b []byte) []byte) {
	c := w.reserve(4 + max)
	start := len(c)
	c = fill(append(c, 0, 0, 0, 0))
	binary.BigEndian.PutUint32(c[start:], uint32(len(c)-start-4+bodyLen))
	w.size += len(c) - start
	w.chunks[w.cur] = c
	w.frames++
}

func appendStr8(b []byte, s string) []byte {
	return append(append(b, byte(len(s))), s...)
}

func (w *frameWriter) ack(seq uint64) {
	w.header(9, 0, func(b []byte) []byte {
		return binary.BigEndian.AppendUint64(append(b, frameAck), seq)
	})
}

func (w *frameWriter) bye(code byte, text string) {
	text = text[:min(len(text), maxByeText)]
	w.header(4+len(text), 0, func(b []byte) []byte {
		b = append(b, frameBye, code)
		b = binary.BigEndian.AppendUint16(b, uint16(len(text)))
		return append(b, text...)
	})
}

func (w *frameWriter) welcome(session, seq uint64, member MemberID) {
	w.header(18+len(member), 0, func(b []byte) []byte {
		b = binary.BigEndian.AppendUint64(append(b, frameWelcome), session)
		b = binary.BigEndian.AppendUint64(b, seq)
		return appendStr8(b, string(member))
	})
}

func (w *frameWriter) hello(h *frame) {
	w.header(1+helloFixedLen+2+len(h.group)+len(h.name), 0, func(b []byte) []byte {
		b = append(b, frameHello, h.version, h.flags)
		b = binary.BigEndian.AppendUint32(b, h.maxMessage)
		b = binary.BigEndian.AppendUint32(b, h.winMsgs)
		b = binary.BigEndian.AppendUint64(b, h.winBytes)
		b = binary.BigEndian.AppendUint64(b, h.session)
		b = binary.BigEndian.AppendUint64(b, h.delivered)
		b = appendStr8(b, string(h.group))
		return appendStr8(b, string(h.name))
	})
}

// message appends a sequenced frame (data, view or leave) for p.
func (w *frameWriter) message(seq uint64, p *payload) {
	switch p.kind {
	case frameData:
		w.header(12+len(p.origin)+len(p.dest), p.size, func(b []byte) []byte {
			b = binary.BigEndian.AppendUint64(append(b, frameData), seq)
			b = append(b, p.flags)
			b = appendStr8(b, string(p.origin))
			return appendStr8(b, string(p.dest))
		})
		for _, part := range p.parts {
			w.part(part)
		}
	case frameView:
		n := 19
		for _, m := range p.view.Members {
			n += 1 + len(m)
		}
		w.header(n, 0, func(b []byte) []byte {
			b = binary.BigEndian.AppendUint64(append(b, frameView), seq)
			b = binary.BigEndian.AppendUint64(b, p.view.ID)
			b = binary.BigEndian.AppendUint16(b, uint16(len(p.view.Members)))
			for _, m := range p.view.Members {
				b = appendStr8(b, string(m))
			}
			return b
		})
	case frameLeave:
		w.header(9, 0, func(b []byte) []byte {
			return binary.BigEndian.AppendUint64(append(b, frameLeave), seq)
		})
	}
}

// flush writes what was gathered and resets the writer.
func (w *frameWriter) flush(conn io.Writer) error {
	if w.size == 0 {
		return nil
	}
	w.cut()
	w.backing = append(w.backing[:0], w.bufs...)
	var err error
	if len(w.backing) == 1 {
		_, err = conn.Write(w.backing[0])
	} else {
		_, err = w.backing.WriteTo(conn)
	}
	clear(w.bufs)
	w.bufs = w.bufs[:0]
	for i := range w.chunks[:w.cur+1] {
		w.chunks[i] = w.chunks[i][:0]
	}
	w.cur, w.segStart, w.size, w.frames = 0, 0, 0, 0
	return err
}
