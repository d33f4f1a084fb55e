package wire

import (
	"encoding"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
)

// Sentinel errors. Every error of Unmarshal wraps exactly one of them; the
// encoding methods return them for messages a receiver would refuse.
var (
	// ErrMalformed is a message that is not a valid encoding of a known
	// message kind: bad CBOR, a type the wire format does not use, a
	// non-canonical encoding, a wrong argument count or type, a chain value
	// that is not 32 bytes, or bytes after the message.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnknownMethod is a message whose method no registered kind has, or
	// a Go type to encode that is not the registered type of its method.
	ErrUnknownMethod = errors.New("wire: unknown method")
	// ErrTooLarge is a message beyond a Config limit: its length, a string
	// length, an array's element count or nesting depth.
	ErrTooLarge = errors.New("wire: message exceeds a limit")
)

// headroom is enough for the head of any built-in kind: the envelope, the
// argument array, four 9-byte integers and a payload's byte string head.
const headroom = 64

// kind is a registered message kind.
type kind struct {
	method  string
	typ     reflect.Type // a pointer to a struct type
	payload bool         // the type implements Payloader
	args    []arg        // the struct's fields, in wire order
}

// arg is one argument of a message kind.
type arg struct {
	name  string
	major byte // the only CBOR major type the argument may have
}

// Codec encodes and decodes messages with fixed limits and a fixed set of
// message kinds. It is immutable and safe for concurrent use.
type Codec struct {
	cfg   Config
	em    cbor.EncMode
	dm    cbor.DecMode
	kinds map[string]kind
}

// NewCodec returns a Codec for cfg, or an error naming each bad setting or
// message kind.
func NewCodec(cfg Config) (*Codec, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Extra = slices.Clone(cfg.Extra)

	eo := cbor.CoreDetEncOptions()
	// A nil byte slice must encode as an empty byte string, not null: the
	// decoder refuses null, and a payload is swapped for nil while encoding.
	eo.NilContainers = cbor.NilContainerAsEmpty
	eo.TagsMd = cbor.TagsForbidden
	em, err := eo.EncMode()
	if err != nil {
		return nil, fmt.Errorf("wire: build encoder: %w", err)
	}
	// The scanner already enforces all of this; the decoder repeats it so
	// that it never depends on the scanner alone.
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:   cfg.MaxNestedLevels,
		MaxArrayElements:  cfg.MaxArrayElements,
		MaxMapPairs:       minArrayElements, // the smallest allowed; maps are refused anyway
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
		BignumTag:         cbor.BignumTagForbidden,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerByteString,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("wire: build decoder: %w", err)
	}

	c := &Codec{cfg: cfg, em: em, dm: dm, kinds: make(map[string]kind)}
	var errs []error
	for _, m := range append(builtinKinds(), cfg.Extra...) {
		if err := c.register(m); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Config returns the codec's configuration, with defaults filled in.
func (c *Codec) Config() Config {
	cfg := c.cfg
	cfg.Extra = slices.Clone(cfg.Extra)
	return cfg
}

// register adds the kind of prototype m after checking that its fields stay
// within the wire format, so that every kind decodes strictly and
// re-encodes to the same bytes.
func (c *Codec) register(m Message) error {
	t := reflect.TypeOf(m)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || reflect.ValueOf(m).IsNil() {
		return fmt.Errorf("wire: message kind %T: register a non-nil pointer to a struct", m)
	}
	method := m.Method()
	switch {
	case method == "" || !utf8.ValidString(method) || len(method) > c.cfg.MaxTextLen:
		return fmt.Errorf("wire: message kind %v: method %q must be non-empty UTF-8 of at most MaxTextLen %d bytes", t, method, c.cfg.MaxTextLen)
	case c.kinds[method].typ != nil:
		return fmt.Errorf("wire: message kind %v: method %q is already registered for %v; give the new kind its own method name", t, method, c.kinds[method].typ)
	}
	st := t.Elem()
	if st.NumField() == 0 || st.Field(0).Name != "_" || st.Field(0).Tag.Get("cbor") != ",toarray" {
		return fmt.Errorf("wire: message kind %v: the first field must be `_ struct{} `cbor:\",toarray\"``", t)
	}
	k := kind{method: method, typ: t}
	var last reflect.StructField
	for i := 1; i < st.NumField(); i++ {
		f := st.Field(i)
		major, ok := wireMajor(f.Type)
		if !f.IsExported() || f.Tag.Get("cbor") != "" || !ok {
			return fmt.Errorf("wire: message kind %v: field %s must be exported, untagged, and an unsigned integer, string, []byte, "+
				"or byte array implementing encoding.BinaryUnmarshaler", t, f.Name)
		}
		k.args = append(k.args, arg{name: f.Name, major: major})
		last = f
	}
	if _, ok := m.(Payloader); ok {
		if last.Type == nil || last.Type.Kind() != reflect.Slice {
			return fmt.Errorf("wire: message kind %v: a Payloader's last field must be its []byte payload", t)
		}
		// Payload and SetPayload must use the last field: the codec relies
		// on the payload being the trailing bytes of the encoding.
		probe := reflect.New(st)
		pp := probe.Interface().(Payloader)
		marker := []byte{1}
		pp.SetPayload(marker)
		field := probe.Elem().Field(last.Index[0]).Bytes()
		if len(field) != 1 || &field[0] != &marker[0] || len(pp.Payload()) != 1 || &pp.Payload()[0] != &marker[0] {
			return fmt.Errorf("wire: message kind %v: Payload and SetPayload must get and set the last field %s", t, last.Name)
		}
		k.payload = true
	}
	c.kinds[method] = k
	return nil
}

// wireMajor returns the CBOR major type of a field of type t, and whether
// t is one the wire format allows: those that decode strictly and
// re-encode to the same bytes.
func wireMajor(t reflect.Type) (byte, bool) {
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return majorUint, true
	case reflect.String:
		return majorText, true
	case reflect.Slice:
		return majorBytes, t.Elem().Kind() == reflect.Uint8
	case reflect.Array:
		return majorBytes, t.Elem().Kind() == reflect.Uint8 && reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.BinaryUnmarshaler]())
	}
	return 0, false
}

// kindOf returns the registered kind of m.
func (c *Codec) kindOf(m Message) (kind, error) {
	if m == nil {
		return kind{}, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return kind{}, fmt.Errorf("%w: nil %T", ErrMalformed, m)
	}
	k, ok := c.kinds[m.Method()]
	if !ok {
		return kind{}, fmt.Errorf("%w: %q (type %T) is not registered", ErrUnknownMethod, m.Method(), m)
	}
	if k.typ != reflect.TypeOf(m) {
		return kind{}, fmt.Errorf("%w: %q is registered for %v, not %T", ErrUnknownMethod, m.Method(), k.typ, m)
	}
	return k, nil
}

// AppendHead appends the encoding of m to dst, except, if m is a Payloader,
// the payload's contents, which it returns as payload: the appended head
// ends with the payload's byte string head, so head[len(dst):] followed by
// payload is exactly Marshal(m). The payload is m's own slice, not a copy,
// so it can be written out without copying; for other kinds it is nil.
//
// It refuses, with the same sentinel error, any message that a codec with
// the same Config would refuse to decode, so nothing is sent that a
// receiver would reject.
func (c *Codec) AppendHead(dst []byte, m Message) (head, payload []byte, err error) {
	k, err := c.kindOf(m)
	if err != nil {
		return dst, nil, err
	}
	return c.appendHead(dst, m, k)
}

func (c *Codec) appendHead(dst []byte, m Message, k kind) (head, payload []byte, err error) {
	args := any(m)
	if k.payload {
		payload = m.(Payloader).Payload()
		// Encode a shallow copy whose payload is empty, so the library
		// never copies the payload; it is the trailing bytes, so only the
		// final byte string head changes.
		cp := reflect.New(k.typ.Elem())
		cp.Elem().Set(reflect.ValueOf(m).Elem())
		cp.Interface().(Payloader).SetPayload(nil)
		args = cp.Interface()
	}
	enc, err := c.em.Marshal(args)
	if err != nil {
		return dst, nil, fmt.Errorf("wire: encode %s: %w", m.Method(), err)
	}
	start := len(dst)
	method := m.Method()
	dst = append(dst, majorArray<<5|2)
	dst = appendHead(dst, majorText, uint64(len(method)))
	dst = append(dst, method...)
	dst = append(dst, enc...)
	sc, err := c.scan(dst[start:])
	if err != nil {
		return dst[:start], nil, fmt.Errorf("wire: encode %s: %w", method, err)
	}
	if !k.payload {
		return dst, nil, nil
	}
	if sc.payloadHead != len(dst)-start-1 {
		return dst[:start], nil, fmt.Errorf("wire: encode %s: the payload did not encode as the last byte string", method)
	}
	if len(payload) > c.cfg.MaxDataLen {
		return dst[:start], nil, fmt.Errorf("wire: encode %s: %w: payload of %d bytes exceeds MaxDataLen %d",
			method, ErrTooLarge, len(payload), c.cfg.MaxDataLen)
	}
	dst = appendHead(dst[:len(dst)-1], majorBytes, uint64(len(payload)))
	if n := len(dst) - start + len(payload); n > c.cfg.MaxMessageLen {
		return dst[:start], nil, fmt.Errorf("wire: encode %s: %w: message of %d bytes exceeds MaxMessageLen %d",
			method, ErrTooLarge, n, c.cfg.MaxMessageLen)
	}
	return dst, payload, nil
}

// MarshalBuffers returns the encoding of m as buffers to write in order: the
// head and, for a Payloader with a non-empty payload, the payload itself
// (m's slice, not a copy).
func (c *Codec) MarshalBuffers(m Message) (net.Buffers, error) {
	head, payload, err := c.AppendHead(nil, m)
	if err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		return net.Buffers{head}, nil
	}
	return net.Buffers{head, payload}, nil
}

// Marshal returns the deterministic encoding of m in one new buffer; a
// payload is copied once, into it.
func (c *Codec) Marshal(m Message) ([]byte, error) {
	k, err := c.kindOf(m)
	if err != nil {
		return nil, err
	}
	var size int
	if k.payload {
		size = len(m.(Payloader).Payload())
	}
	head, payload, err := c.appendHead(make([]byte, 0, headroom+size), m, k)
	if err != nil {
		return nil, err
	}
	return append(head, payload...), nil
}

// Unmarshal decodes one whole message. Byte strings other than a payload
// are copied; a Payloader's payload (a Store's Data) is a slice of b, not a
// copy, so b must not be modified or reused while the message is in use.
// Every error wraps ErrMalformed, ErrUnknownMethod or ErrTooLarge.
func (c *Codec) Unmarshal(b []byte) (Message, error) {
	s, err := c.scan(b)
	if err != nil {
		return nil, err
	}
	k := c.kinds[s.method]
	m := reflect.New(k.typ.Elem()).Interface().(Message)
	args := b[s.argsOff:]
	if k.payload {
		if s.payloadHead < 0 {
			return nil, fmt.Errorf("%w: %s: no payload found", ErrMalformed, s.method) // checkArgs makes this unreachable
		}
		// Decode the arguments with an empty byte string in the payload's
		// place, then point the payload into b.
		args = append(append(make([]byte, 0, s.payloadHead-s.argsOff+1), b[s.argsOff:s.payloadHead]...), emptyBytes)
	}
	if err := c.dm.Unmarshal(args, m); err != nil {
		return nil, fmt.Errorf("%w: %s arguments: %v", ErrMalformed, s.method, err)
	}
	if k.payload {
		// Cap the slice so that appending to the payload cannot write over
		// bytes of b beyond the message.
		m.(Payloader).SetPayload(b[s.payloadOff:len(b):len(b)])
	}
	return m, nil
}

// scanned is what scan learns about a valid message.
type scanned struct {
	method                  string
	argsOff                 int
	payloadHead, payloadOff int // -1 if the kind has no payload or none was found
}

// scan checks the envelope and limits of the message in b and that nothing
// follows it.
func (c *Codec) scan(b []byte) (scanned, error) {
	if len(b) > c.cfg.MaxMessageLen {
		return scanned{}, fmt.Errorf("%w: message of %d bytes exceeds MaxMessageLen %d", ErrTooLarge, len(b), c.cfg.MaxMessageLen)
	}
	major, n, off, err := readHead(b, 0)
	if err != nil {
		return scanned{}, err
	}
	if major != majorArray || n != 2 {
		return scanned{}, malformedf(0, "a message is an array of two elements, [method, args]")
	}
	major, _, headEnd, err := readHead(b, off)
	if err != nil {
		return scanned{}, err
	}
	if major != majorText {
		return scanned{}, malformedf(off, "the method must be a text string")
	}
	s := scanner{buf: b, cfg: &c.cfg, payloadHead: -1, payloadOff: -1}
	argsOff, err := s.item(off, 1)
	if err != nil {
		return scanned{}, err
	}
	method := b[headEnd:argsOff]
	k, ok := c.kinds[string(method)]
	if !ok {
		const show = 64
		if len(method) > show {
			method = method[:show]
		}
		return scanned{}, fmt.Errorf("%w: %q", ErrUnknownMethod, method)
	}
	s.payload = k.payload
	end, err := s.item(argsOff, 1)
	if err != nil {
		return scanned{}, err
	}
	if end != len(b) {
		return scanned{}, malformedf(end, "%d bytes after the message", len(b)-end)
	}
	if err := checkArgs(b, argsOff, k); err != nil {
		return scanned{}, err
	}
	return scanned{method: k.method, argsOff: argsOff, payloadHead: s.payloadHead, payloadOff: s.payloadOff}, nil
}

// checkArgs checks the argument array at b[off:] of a scanned message
// against kind k: the argument count and each argument's CBOR type. The
// cbor library alone would accept more, for example an array of small
// integers for a []byte field.
func checkArgs(b []byte, off int, k kind) error {
	major, n, next, err := readHead(b, off)
	if err != nil {
		return err
	}
	if major != majorArray || n != uint64(len(k.args)) {
		return malformedf(off, "%s takes an array of %d arguments, %s", k.method, len(k.args), argNames(k))
	}
	for _, a := range k.args {
		at := next
		if major, n, next, err = readHead(b, at); err != nil {
			return err
		}
		if major != a.major {
			return malformedf(at, "%s argument %s must be %s, not %s", k.method, a.name, majorName(a.major), majorName(major))
		}
		if major != majorUint {
			next += int(n) // the scan bounded n by the message length
		}
	}
	return nil
}

func majorName(major byte) string {
	switch major {
	case majorUint:
		return "an unsigned integer"
	case majorBytes:
		return "a byte string"
	case majorText:
		return "a text string"
	case majorArray:
		return "an array"
	}
	return fmt.Sprintf("major type %d", major)
}

func argNames(k kind) string {
	names := make([]string, len(k.args))
	for i, a := range k.args {
		names[i] = a.name
	}
	return "[" + strings.Join(names, ", ") + "]"
}
