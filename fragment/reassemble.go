package fragment

import (
	"encoding/binary"
	"fmt"
)

// Reassembler rebuilds messages from the fragments of one FIFO stream (one
// sender), checking the sequence strictly. It is not safe for concurrent
// use: a stream is consumed by one goroutine. The zero value is ready to use
// with the default Config.
type Reassembler struct {
	lim limits
	// buf holds the bodies received so far of the message in progress; its
	// capacity is fixed when the first fragment arrives and never grows.
	buf []byte
	// count is the fragment count of the message in progress, 0 when idle.
	count int
	// next is the offset expected next while a message is in progress.
	next int
	// spare is a buffer the Reassembler owns and may reuse for the next
	// message of several fragments: one given to Recycle, or the buffer of a
	// discarded message.
	spare []byte
}

// NewReassembler returns an idle Reassembler for cfg, or the error of
// cfg.Validate.
func NewReassembler(cfg Config) (*Reassembler, error) {
	l, err := newLimits(cfg)
	if err != nil {
		return nil, err
	}
	return &Reassembler{lim: l}, nil
}

// InProgress reports whether some fragments of a message have been accepted
// and its final fragment has not arrived yet.
func (r *Reassembler) InProgress() bool { return r.count != 0 }

// Reset discards the message in progress, if any; the next fragment must have
// offset 0. Use it when the stream itself restarts (the sender left the view,
// the stream was reset), since a message can never continue across that.
func (r *Reassembler) Reset() {
	r.keep(r.buf)
	r.buf, r.count, r.next = nil, 0, 0
}

// Recycle hands back a message of several fragments that Add returned and
// that the caller no longer uses, nor anything aliasing it; the Reassembler
// may write the next message into it. Reusing buffers spares the allocation
// of every large message and the page faults of fresh memory, which cost
// more than the copy itself. Pass the message as Add returned it: Recycle
// ignores anything not longer than one fragment body, which includes every
// single-fragment message (those alias the caller's fragment and are never
// the Reassembler's to reuse). At most one buffer is kept, the larger, for
// as long as the Reassembler lives.
func (r *Reassembler) Recycle(msg []byte) {
	if len(msg) > r.lim.body() {
		r.keep(msg)
	}
}

// keep retains buf as the spare buffer if it is larger than the current one.
func (r *Reassembler) keep(buf []byte) {
	if cap(buf) > cap(r.spare) {
		r.spare = buf[:0]
	}
}

// alloc returns an empty buffer of capacity at least size, reusing the spare
// one if it is large enough.
func (r *Reassembler) alloc(size int) []byte {
	if cap(r.spare) >= size {
		buf := r.spare
		r.spare = nil
		return buf
	}
	return make([]byte, 0, size)
}

// Add consumes one received fragment, header and body in one slice.
//
// It returns done=true and the message when frag completes one, done=false
// and a nil message when more fragments are needed, or an error matching
// ErrProtocol (and one of the specific sentinels) when frag breaks a rule.
// An error discards the message in progress: nothing of it is ever returned,
// frag is not part of any message, and reassembly starts again only at the
// next fragment with offset 0.
//
// Ownership: a message of one fragment is returned as a view of frag's body
// (no copy), so the caller must keep frag unmodified while it uses the
// message. A message of several fragments is a new slice owned by the
// caller (until the caller hands it back with Recycle), into which each body
// was copied exactly once; Add never keeps a reference to frag after it
// returns.
func (r *Reassembler) Add(frag []byte) (msg []byte, done bool, err error) {
	msg, done, err = r.add(frag)
	if err != nil {
		r.Reset()
	}
	return msg, done, err
}

func (r *Reassembler) add(frag []byte) ([]byte, bool, error) {
	if len(frag) < HeaderSize {
		return nil, false, fmt.Errorf("%w: got %d bytes, a fragment has at least %d", ErrTruncated, len(frag), HeaderSize)
	}
	if frag[0] != Version {
		return nil, false, fmt.Errorf("%w: got version %d, want %d", ErrVersion, frag[0], Version)
	}
	offset := int(binary.BigEndian.Uint16(frag[1:3]))
	count := int(binary.BigEndian.Uint16(frag[3:5]))
	body := frag[HeaderSize:]
	if count == 0 {
		return nil, false, fmt.Errorf("%w: fragment %d has count 0, a message has at least 1 fragment", ErrHeader, offset)
	}
	if offset >= count {
		return nil, false, fmt.Errorf("%w: offset %d is not below count %d", ErrHeader, offset, count)
	}
	maxBody, maxMessage := r.lim.body(), r.lim.message()
	if len(body) > maxBody {
		return nil, false, fmt.Errorf("%w: fragment %d/%d has a %d-byte body, the maximum is %d (MaxFragment %d)",
			ErrBodySize, offset, count, len(body), maxBody, maxBody+HeaderSize)
	}
	last := offset == count-1

	if r.count == 0 {
		if offset != 0 {
			return nil, false, fmt.Errorf("%w: got fragment %d/%d with no message in progress, want offset 0",
				ErrSequence, offset, count)
		}
	} else {
		if count != r.count {
			return nil, false, fmt.Errorf("%w: count changed from %d to %d at fragment %d (expected fragment %d)",
				ErrSequence, r.count, count, offset, r.next)
		}
		if offset != r.next {
			what := "gap"
			if offset < r.next {
				what = "repeat"
			}
			return nil, false, fmt.Errorf("%w: %s: got fragment %d/%d, want %d", ErrSequence, what, offset, count, r.next)
		}
	}

	// A sender fills every non-final body and never sends an empty final
	// one after full ones, so each message has exactly one encoding.
	if !last && len(body) != maxBody {
		return nil, false, fmt.Errorf("%w: non-final fragment %d/%d has a %d-byte body, want exactly %d",
			ErrBodySize, offset, count, len(body), maxBody)
	}
	if last && count > 1 && len(body) == 0 {
		return nil, false, fmt.Errorf("%w: final fragment %d/%d is empty, a sender would have sent %d fragments",
			ErrBodySize, offset, count, count-1)
	}

	switch {
	case count == 1:
		if len(body) > maxMessage {
			return nil, false, fmt.Errorf("%w: %d bytes, MaxMessage is %d", ErrMessageSize, len(body), maxMessage)
		}
		return body, true, nil
	case offset == 0:
		// Full non-final bodies and a non-empty final one make the count
		// alone a lower bound of the size: reject before allocating. Sizes
		// are computed in int64 so that no count can overflow them.
		least := int64(count-1)*int64(maxBody) + 1
		if least > int64(maxMessage) {
			return nil, false, fmt.Errorf("%w: %d fragments of %d body bytes make at least %d bytes, MaxMessage is %d",
				ErrMessageSize, count, maxBody, least, maxMessage)
		}
		size := int(min(int64(count)*int64(maxBody), int64(maxMessage)))
		r.buf = append(r.alloc(size), body...)
		r.count, r.next = count, 1
		return nil, false, nil
	case !last:
		r.buf = append(r.buf, body...)
		r.next++
		return nil, false, nil
	}
	if size := len(r.buf) + len(body); size > maxMessage {
		return nil, false, fmt.Errorf("%w: %d bytes, MaxMessage is %d", ErrMessageSize, size, maxMessage)
	}
	msg := append(r.buf, body...)
	r.buf, r.count, r.next = nil, 0, 0 // msg now belongs to the caller
	return msg, true, nil
}
