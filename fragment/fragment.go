package fragment

import (
	"encoding/binary"
	"errors"
)

// Format constants of version 1. They are part of the wire contract shared
// by every node and must not change without a new Version.
const (
	// Version is the only fragment format version this package writes and
	// accepts.
	Version = 1
	// HeaderSize is the length of the fragment header: version, offset and
	// count.
	HeaderSize = 5
	// MaxCount is the largest number of fragments one message may have,
	// because count is a 16-bit field.
	MaxCount = 65535
)

// ErrProtocol is matched (with errors.Is) by every error the Reassembler
// returns: the peer sent something the format forbids. The more specific
// sentinels below tell which rule was broken; each of them also matches
// ErrProtocol.
var ErrProtocol = errors.New("fragment: protocol error")

// Specific protocol errors. Each wraps ErrProtocol.
var (
	// ErrTruncated: the fragment is shorter than the header.
	ErrTruncated = protocolError("fragment: truncated header")
	// ErrVersion: the version byte is not Version.
	ErrVersion = protocolError("fragment: unknown version")
	// ErrHeader: the header is self-contradictory (count 0, or offset not
	// below count).
	ErrHeader = protocolError("fragment: invalid header")
	// ErrSequence: the fragment does not continue the stream (a gap, a
	// repeat, a changed count, or a continuation fragment with no message in
	// progress).
	ErrSequence = protocolError("fragment: out of sequence")
	// ErrBodySize: the body is larger than the configured maximum, a
	// non-final body is not full size, or the final body of a multi-fragment
	// message is empty.
	ErrBodySize = protocolError("fragment: wrong body size")
	// ErrMessageSize: the message is larger than the configured MaxMessage.
	ErrMessageSize = protocolError("fragment: message too large")
)

// ErrTooLarge is returned by the sending side (Splitter) for a payload the
// format or the configuration cannot carry: it would need more than MaxCount
// fragments, or it exceeds MaxMessage, which receivers would reject. Nothing
// has been split or sent when it is returned.
var ErrTooLarge = errors.New("fragment: message too large to send")

// protocolError is a sentinel that also matches ErrProtocol, so callers can
// branch on the broad class or on the precise rule.
type protocolError string

func (e protocolError) Error() string { return string(e) }
func (e protocolError) Unwrap() error { return ErrProtocol }

// Fragment is one fragment of a message: its encoded header and a body that
// aliases the payload given to Splitter.Split (no payload bytes are copied).
type Fragment struct {
	// Header is the encoded 5-byte header.
	Header [HeaderSize]byte
	// Body is this fragment's part of the payload. It aliases the payload and
	// its capacity is clipped to its length, so appending to it never
	// overwrites the next fragment's bytes.
	Body []byte
}

// Offset returns the fragment's index within its message, from 0.
func (f Fragment) Offset() int { return int(binary.BigEndian.Uint16(f.Header[1:3])) }

// Count returns the number of fragments in the fragment's message.
func (f Fragment) Count() int { return int(binary.BigEndian.Uint16(f.Header[3:5])) }

// Len returns the encoded length of the fragment, header included.
func (f Fragment) Len() int { return HeaderSize + len(f.Body) }

// Parts returns the header and the body as two buffers, ready for a
// vectored write (net.Buffers) or a send taking parts ...[]byte, so the body
// goes out without being copied. The header part is a copy of f.Header made
// in the same single allocation as the returned slice.
func (f Fragment) Parts() [][]byte {
	p := &struct {
		header [HeaderSize]byte
		parts  [2][]byte
	}{header: f.Header}
	p.parts = [2][]byte{p.header[:], f.Body}
	return p.parts[:]
}

// AppendTo appends the encoded fragment (header then body) to dst and
// returns the extended slice, for callers that want contiguous bytes.
func (f Fragment) AppendTo(dst []byte) []byte {
	return append(append(dst, f.Header[:]...), f.Body...)
}

// header encodes the header of fragment offset of count.
func header(offset, count int) [HeaderSize]byte {
	return [HeaderSize]byte{Version, byte(offset >> 8), byte(offset), byte(count >> 8), byte(count)}
}
