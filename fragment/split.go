package fragment

import (
	"fmt"
	"iter"
)

// Splitter cuts payloads into fragments. It is a small immutable value, safe
// for concurrent use; the zero value uses the default Config.
type Splitter struct {
	lim limits
}

// NewSplitter returns a Splitter for cfg, or the error of cfg.Validate.
func NewSplitter(cfg Config) (Splitter, error) {
	l, err := newLimits(cfg)
	if err != nil {
		return Splitter{}, err
	}
	return Splitter{lim: l}, nil
}

// Count returns how many fragments a payload of size bytes needs, or an
// error matching ErrTooLarge if it cannot be sent: more than MaxCount
// fragments, or more than MaxMessage bytes. A sender calls it before
// applying anything locally, so a message that cannot be replicated is
// refused before it has effects.
func (s Splitter) Count(size int) (int, error) {
	maxBody, maxMessage := s.lim.body(), s.lim.message()
	if size > maxMessage {
		return 0, fmt.Errorf("%w: %d bytes exceed MaxMessage %d", ErrTooLarge, size, maxMessage)
	}
	if size <= maxBody {
		return 1, nil // includes the empty message: one fragment, empty body
	}
	// Divide before comparing so that no product can overflow.
	n := (size-1)/maxBody + 1
	if n > MaxCount {
		return 0, fmt.Errorf("%w: %d bytes need %d fragments of at most %d body bytes; the format allows %d",
			ErrTooLarge, size, n, maxBody, MaxCount)
	}
	return n, nil
}

// Split returns the fragments of payload without copying it: every body
// aliases payload, so payload must stay unmodified until the fragments have
// been sent. Every fragment but the last has a body of exactly MaxFragment-5
// bytes; the last is non-empty unless payload is empty, which gives one
// fragment with count 1 and an empty body. The error, matching ErrTooLarge,
// comes from Count.
func (s Splitter) Split(payload []byte) (Fragments, error) {
	n, err := s.Count(len(payload))
	if err != nil {
		return Fragments{}, err
	}
	return Fragments{payload: payload, maxBody: s.lim.body(), count: n}, nil
}

// Fragments is the result of Split: a view of the payload that produces its
// fragments on demand, so iterating over the fragments of a large payload
// allocates nothing.
type Fragments struct {
	payload []byte
	maxBody int
	count   int
}

// Len returns the number of fragments.
func (fs Fragments) Len() int { return fs.count }

// At returns fragment i. It panics if i is not in [0, Len()), like an index
// expression.
func (fs Fragments) At(i int) Fragment {
	if uint(i) >= uint(fs.count) {
		panic(fmt.Sprintf("fragment: index %d out of range [0, %d)", i, fs.count))
	}
	start := i * fs.maxBody
	end := min(start+fs.maxBody, len(fs.payload))
	return Fragment{Header: header(i, fs.count), Body: fs.payload[start:end:end]}
}

// All yields every fragment with its offset, in order.
func (fs Fragments) All() iter.Seq2[int, Fragment] {
	return func(yield func(int, Fragment) bool) {
		for i := range fs.count {
			if !yield(i, fs.At(i)) {
				return
			}
		}
	}
}
