package wire

import (
	"errors"
	"fmt"
)

// Defaults of Config. The same limits must be set on every node: a sender
// refuses to encode what a receiver with these limits would refuse.
const (
	// DefaultMaxDataLen bounds object data: 64 MiB.
	DefaultMaxDataLen = 64 << 20
	// DefaultMaxByteStringLen bounds transaction metadata strings: 1 MiB.
	DefaultMaxByteStringLen = 1 << 20
	// DefaultMaxTextLen bounds text strings: 64 KiB.
	DefaultMaxTextLen = 64 << 10
	// DefaultMaxMessageLen leaves room for a message's metadata next to the
	// largest object data.
	DefaultMaxMessageLen = DefaultMaxDataLen + 4<<20
	// DefaultMaxNestedLevels is the smallest the cbor library accepts; a
	// message nests two levels.
	DefaultMaxNestedLevels = 4
	// DefaultMaxArrayElements is the smallest the cbor library accepts; the
	// largest argument array has five elements.
	DefaultMaxArrayElements = 16
)

// Bounds the cbor library imposes on its nesting and element limits, and a
// ceiling on nesting because the strict scanner recurses once per level.
const (
	minByteStringLen = len(Chain{})
	minTextLen       = 16 // room for every built-in method name
	minNestedLevels  = 4
	maxNestedLevels  = 64
	minArrayElements = 16
	maxArrayElements = 1 << 20
)

// Config holds a Codec's limits and any message kinds beyond the built-in
// set. A zero field takes its default.
type Config struct {
	// MaxMessageLen bounds the encoding of a whole message in bytes.
	MaxMessageLen int
	// MaxDataLen bounds the payload of a Payloader (a Store's object data).
	MaxDataLen int
	// MaxByteStringLen bounds every other byte string (transaction
	// metadata).
	MaxByteStringLen int
	// MaxTextLen bounds every text string (method, node name, failure text).
	MaxTextLen int
	// MaxNestedLevels bounds array nesting; the envelope and the argument
	// array are two levels.
	MaxNestedLevels int
	// MaxArrayElements bounds the element count of any array.
	MaxArrayElements int
	// Extra registers message kinds beyond the built-in set: non-nil
	// pointers to toarray structs with distinct method names. Fields must be
	// unsigned integers, strings, byte slices, or byte arrays that implement
	// encoding.BinaryUnmarshaler (to check their length, like Chain).
	Extra []Message
}

// DefaultConfig returns a Config with every limit at its default.
func DefaultConfig() Config {
	return Config{
		MaxMessageLen:    DefaultMaxMessageLen,
		MaxDataLen:       DefaultMaxDataLen,
		MaxByteStringLen: DefaultMaxByteStringLen,
		MaxTextLen:       DefaultMaxTextLen,
		MaxNestedLevels:  DefaultMaxNestedLevels,
		MaxArrayElements: DefaultMaxArrayElements,
	}
}

// withDefaults returns c with every zero limit replaced by its default.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.MaxMessageLen, d.MaxMessageLen)
	setDefault(&c.MaxDataLen, d.MaxDataLen)
	setDefault(&c.MaxByteStringLen, d.MaxByteStringLen)
	setDefault(&c.MaxTextLen, d.MaxTextLen)
	setDefault(&c.MaxNestedLevels, d.MaxNestedLevels)
	setDefault(&c.MaxArrayElements, d.MaxArrayElements)
	return c
}

func setDefault(v *int, d int) {
	if *v == 0 {
		*v = d
	}
}

// Validate reports every bad setting of c (after defaults), each naming the
// setting, its value and the fix. Extra kinds are checked by NewCodec.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	positive := func(name string, v int) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("wire: %s is %d: set it to a positive byte count, or 0 for the default", name, v))
		}
	}
	positive("MaxMessageLen", c.MaxMessageLen)
	positive("MaxDataLen", c.MaxDataLen)
	positive("MaxByteStringLen", c.MaxByteStringLen)
	positive("MaxTextLen", c.MaxTextLen)
	if c.MaxByteStringLen >= 0 && c.MaxByteStringLen < minByteStringLen {
		errs = append(errs, fmt.Errorf("wire: MaxByteStringLen is %d: set it to at least %d, the size of a chain value", c.MaxByteStringLen, minByteStringLen))
	}
	if c.MaxTextLen >= 0 && c.MaxTextLen < minTextLen {
		errs = append(errs, fmt.Errorf("wire: MaxTextLen is %d: set it to at least %d, room for method names", c.MaxTextLen, minTextLen))
	}
	within := func(name string, v int) {
		if v > c.MaxMessageLen {
			errs = append(errs, fmt.Errorf("wire: %s is %d, above MaxMessageLen %d: lower it or raise MaxMessageLen", name, v, c.MaxMessageLen))
		}
	}
	within("MaxDataLen", c.MaxDataLen)
	within("MaxByteStringLen", c.MaxByteStringLen)
	within("MaxTextLen", c.MaxTextLen)
	if c.MaxNestedLevels < minNestedLevels || c.MaxNestedLevels > maxNestedLevels {
		errs = append(errs, fmt.Errorf("wire: MaxNestedLevels is %d: set it between %d and %d, or 0 for the default %d",
			c.MaxNestedLevels, minNestedLevels, maxNestedLevels, DefaultMaxNestedLevels))
	}
	if c.MaxArrayElements < minArrayElements || c.MaxArrayElements > maxArrayElements {
		errs = append(errs, fmt.Errorf("wire: MaxArrayElements is %d: set it between %d and %d, or 0 for the default %d",
			c.MaxArrayElements, minArrayElements, maxArrayElements, DefaultMaxArrayElements))
	}
	return errors.Join(errs...)
}
