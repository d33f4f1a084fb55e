package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// CBOR major types (RFC 8949 section 3.1) that the wire format uses. The
// others (negative integers, maps, tags, floats and simple values) appear in
// no message kind and are refused by the scanner.
const (
	majorUint  = 0
	majorBytes = 2
	majorText  = 3
	majorArray = 4
)

// emptyBytes is the encoding of an empty byte string, which stands in for a
// payload while the rest of its message is encoded or decoded.
const emptyBytes = majorBytes << 5

// appendHead appends the head of a data item of the given major type and
// argument in its shortest form, as Core Deterministic Encoding requires.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(dst, m|byte(n))
	case n <= 0xff:
		return append(dst, m|24, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, m|25), uint16(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, m|26), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, m|27), n)
	}
}

// readHead decodes the head of the data item at b[off:] and returns its major
// type, its argument and the offset after the head. It refuses the major
// types no message uses, indefinite lengths, reserved encodings, and any
// argument not in its shortest form: accepting only the canonical form is
// what makes every decoded message re-encode to the same bytes.
func readHead(b []byte, off int) (major byte, n uint64, next int, err error) {
	if off >= len(b) {
		return 0, 0, 0, malformedf(off, "truncated: a data item is missing")
	}
	major, ai := b[off]>>5, b[off]&0x1f
	switch major {
	case majorUint, majorBytes, majorText, majorArray:
	case 1:
		return 0, 0, 0, malformedf(off, "negative integers are not used by the wire format")
	case 5:
		return 0, 0, 0, malformedf(off, "maps are not used by the wire format")
	case 6:
		return 0, 0, 0, malformedf(off, "tags are forbidden")
	default:
		return 0, 0, 0, malformedf(off, "floats and simple values (false, true, null, undefined) are not used by the wire format")
	}
	switch {
	case ai < 24:
		return major, uint64(ai), off + 1, nil
	case ai == 31:
		return 0, 0, 0, malformedf(off, "indefinite lengths are forbidden")
	case ai > 27:
		return 0, 0, 0, malformedf(off, "reserved additional information %d", ai)
	}
	size := 1 << (ai - 24)
	body := b[off+1:]
	if len(body) < size {
		return 0, 0, 0, malformedf(off, "truncated: head needs %d more bytes, %d left", size, len(body))
	}
	var shortest uint64
	switch size {
	case 1:
		n, shortest = uint64(body[0]), 24
	case 2:
		n, shortest = uint64(binary.BigEndian.Uint16(body)), 0x100
	case 4:
		n, shortest = uint64(binary.BigEndian.Uint32(body)), 0x10000
	default:
		n, shortest = binary.BigEndian.Uint64(body), 0x100000000
	}
	if n < shortest {
		return 0, 0, 0, malformedf(off, "argument %d is not in its shortest form", n)
	}
	return major, n, off + 1 + size, nil
}

// scanner validates a whole message before it is decoded into Go values, so
// that the limits hold for every byte and nothing is decoded from a message
// that will be refused. Levels count arrays: the envelope is level 1 and the
// argument array level 2.
type scanner struct {
	buf []byte
	cfg *Config
	// payload says the message kind is a Payloader: a byte string that is
	// an argument and ends the message is its payload, bounded by
	// MaxDataLen instead of MaxByteStringLen.
	payload bool
	// payloadHead and payloadOff are the offsets of the payload's head and
	// contents; payloadHead is -1 until a payload is found.
	payloadHead, payloadOff int
}

// item validates the data item at off, inside an array at nesting level
// level, and returns the offset after it.
func (s *scanner) item(off, level int) (int, error) {
	major, n, next, err := readHead(s.buf, off)
	if err != nil {
		return 0, err
	}
	left := uint64(len(s.buf) - next)
	switch major {
	case majorBytes:
		if n > left {
			return 0, malformedf(off, "truncated: byte string of %d bytes, %d left", n, left)
		}
		end := next + int(n)
		if s.payload && level == 2 && end == len(s.buf) {
			if n > uint64(s.cfg.MaxDataLen) {
				return 0, tooLargef(off, "payload of %d bytes exceeds MaxDataLen %d", n, s.cfg.MaxDataLen)
			}
			s.payloadHead, s.payloadOff = off, next
			return end, nil
		}
		if n > uint64(s.cfg.MaxByteStringLen) {
			return 0, tooLargef(off, "byte string of %d bytes exceeds MaxByteStringLen %d", n, s.cfg.MaxByteStringLen)
		}
		return end, nil
	case majorText:
		if n > left {
			return 0, malformedf(off, "truncated: text string of %d bytes, %d left", n, left)
		}
		if n > uint64(s.cfg.MaxTextLen) {
			return 0, tooLargef(off, "text string of %d bytes exceeds MaxTextLen %d", n, s.cfg.MaxTextLen)
		}
		end := next + int(n)
		if !utf8.Valid(s.buf[next:end]) {
			return 0, malformedf(off, "text string is not valid UTF-8")
		}
		return end, nil
	case majorArray:
		level++
		if level > s.cfg.MaxNestedLevels {
			return 0, tooLargef(off, "arrays nested deeper than MaxNestedLevels %d", s.cfg.MaxNestedLevels)
		}
		if n > uint64(s.cfg.MaxArrayElements) {
			return 0, tooLargef(off, "array of %d elements exceeds MaxArrayElements %d", n, s.cfg.MaxArrayElements)
		}
		// Every element takes at least one byte: refuse an impossible count
		// before looping over it.
		if n > left {
			return 0, malformedf(off, "truncated: array of %d elements, %d bytes left", n, left)
		}
		for range n {
			if next, err = s.item(next, level); err != nil {
				return 0, err
			}
		}
		return next, nil
	}
	return next, nil // majorUint: the head is the whole item.
}

func malformedf(off int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrMalformed, off, fmt.Sprintf(format, args...))
}

func tooLargef(off int, format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrTooLarge, off, fmt.Sprintf(format, args...))
}
