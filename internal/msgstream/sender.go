package msgstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/wire"
)

// Transport is what a Sender sends through: a *gcs.Group satisfies it.
// Both calls must keep to one FIFO stream per destination and keep
// references to parts rather than copies.
type Transport interface {
	Multicast(ctx context.Context, parts ...[]byte) error
	Send(ctx context.Context, to gcs.MemberID, parts ...[]byte) error
}

// SendCounters are a Sender's totals since it was made.
type SendCounters struct {
	// Messages is the number of whole messages sent.
	Messages uint64
	// Fragments is the number of fragments (gcs messages) sent.
	Fragments uint64
	// Bytes is the number of encoded message bytes sent, headers of the
	// fragments excluded.
	Bytes uint64
}

// Sender splits messages into fragments and sends them on one Transport.
// It is safe for concurrent use; the fragments of concurrent messages never
// interleave.
type Sender struct {
	t        Transport
	codec    *wire.Codec
	splitter fragment.Splitter
	body     int // largest fragment body

	mu sync.Mutex // held while one message's fragments are sent

	messages, fragments, bytes atomic.Uint64
}

// NewSender returns a Sender on t, or the error of cfg.Validate.
func NewSender(t Transport, cfg Config) (*Sender, error) {
	if t == nil {
		return nil, errors.New("msgstream: NewSender: nil Transport; pass the node's *gcs.Group")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := cfg.codec()
	if err != nil {
		return nil, fmt.Errorf("msgstream: default codec: %w", err)
	}
	sp, err := fragment.NewSplitter(cfg.Fragment)
	if err != nil {
		return nil, fmt.Errorf("msgstream: %w", err)
	}
	maxFragment := cfg.Fragment.MaxFragment
	if maxFragment == 0 {
		maxFragment = fragment.DefaultMaxFragment
	}
	return &Sender{t: t, codec: codec, splitter: sp, body: maxFragment - fragment.HeaderSize}, nil
}

// FitsFragments reports, with an error matching ErrTooLarge, whether an
// encoded message of size bytes cannot be sent as fragments.
func (s *Sender) FitsFragments(size int) error {
	if _, err := s.splitter.Count(size); err != nil {
		return fmt.Errorf("%w: %d bytes: %w", ErrTooLarge, size, err)
	}
	return nil
}

// Check reports whether m can be sent, without sending anything: an error
// matching ErrTooLarge (and the wire or fragment error) if a receiver would
// refuse it. A primary checks a store this way before applying it locally.
func (s *Sender) Check(m wire.Message) error {
	head, payload, err := s.codec.AppendHead(nil, m)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTooLarge, m.Method(), err)
	}
	return s.FitsFragments(len(head) + len(payload))
}

// Send sends m to member to, or to every other member of the view when to is
// "". A Payloader's payload is sent without a copy and must stay unmodified
// afterwards. A message that cannot be sent is refused before anything is
// sent (ErrTooLarge). ctx bounds the wait for the first fragment only:
// once it is queued the rest follow regardless (see the package doc).
func (s *Sender) Send(ctx context.Context, to gcs.MemberID, m wire.Message) error {
	// Reserve room for the first fragment's header in front of the head,
	// so a small message goes out as one buffer.
	buf := make([]byte, fragment.HeaderSize, fragment.HeaderSize+64)
	head, payload, err := s.codec.AppendHead(buf, m)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTooLarge, m.Method(), err)
	}
	size := len(head) - fragment.HeaderSize + len(payload)
	count, err := s.splitter.Count(size)
	if err != nil {
		return fmt.Errorf("%w: %s of %d bytes: %w", ErrTooLarge, m.Method(), size, err)
	}
	frags := s.split(head, payload, count)

	s.mu.Lock()
	defer s.mu.Unlock()
	for i, parts := range frags {
		if i == 1 {
			ctx = context.WithoutCancel(ctx)
		}
		if to == "" {
			err = s.t.Multicast(ctx, parts...)
		} else {
			err = s.t.Send(ctx, to, parts...)
		}
		if err != nil {
			return fmt.Errorf("msgstream: send %s fragment %d of %d to %q: %w", m.Method(), i, count, to, err)
		}
	}
	s.messages.Add(1)
	s.fragments.Add(uint64(count))
	s.bytes.Add(uint64(size))
	return nil
}

// split returns the parts of each of count fragments of the message
// head[HeaderSize:] followed by payload. The first fragment's header is
// written into head's reserved prefix, so it and the start of the head are
// one buffer; the others get their own header. Every parts slice is
// distinct, because the transport keeps them.
func (s *Sender) split(head, payload []byte, count int) [][][]byte {
	frags := make([][][]byte, count)
	headers := make([]byte, (count-1)*fragment.HeaderSize)
	c := cursor{segs: [2][]byte{head[fragment.HeaderSize:], payload}}
	for i := range count {
		parts := make([][]byte, 1, 3)
		want := s.body
		if i == 0 {
			putHeader(head, 0, count)
			n := fragment.HeaderSize + min(len(c.segs[0]), want)
			parts[0] = head[:n:n]
			c.skip(n - fragment.HeaderSize)
			want -= n - fragment.HeaderSize
		} else {
			h := headers[(i-1)*fragment.HeaderSize : i*fragment.HeaderSize : i*fragment.HeaderSize]
			putHeader(h, i, count)
			parts[0] = h
		}
		frags[i] = c.take(parts, want)
	}
	return frags
}

// cursor walks the concatenation of two buffers without copying them.
type cursor struct {
	segs     [2][]byte
	seg, pos int
}

// skip advances by n bytes of the current segment.
func (c *cursor) skip(n int) {
	c.pos += n
	c.next()
}

// next moves past exhausted segments.
func (c *cursor) next() {
	for c.seg < len(c.segs) && c.pos == len(c.segs[c.seg]) {
		c.seg, c.pos = c.seg+1, 0
	}
}

// take appends views of the next want bytes (fewer at the end) to parts.
func (c *cursor) take(parts [][]byte, want int) [][]byte {
	for c.next(); want > 0 && c.seg < len(c.segs); c.next() {
		rest := c.segs[c.seg][c.pos:]
		n := min(want, len(rest))
		parts = append(parts, rest[:n:n])
		want -= n
		c.pos += n
	}
	return parts
}

// putHeader writes a version 1 fragment header.
func putHeader(h []byte, offset, count int) {
	h[0] = fragment.Version
	h[1], h[2] = byte(offset>>8), byte(offset)
	h[3], h[4] = byte(count>>8), byte(count)
}

// Counters returns the totals so far. Safe to call at any time.
func (s *Sender) Counters() SendCounters {
	return SendCounters{Messages: s.messages.Load(), Fragments: s.fragments.Load(), Bytes: s.bytes.Load()}
}
