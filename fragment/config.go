package fragment

import (
	"errors"
	"fmt"
)

// Defaults for Config fields left at zero.
const (
	// DefaultMaxFragment is the default maximum encoded fragment size,
	// header included: the default GCS message size limit (100 KiB).
	DefaultMaxFragment = 102400
	// DefaultMaxMessage is the default maximum size of a reassembled
	// message: a 64 MiB object plus room for the envelope around it.
	DefaultMaxMessage = 64<<20 + 64<<10
	// LimitMaxFragment is the largest MaxFragment accepted by Validate. It is
	// far above any sensible GCS message size and keeps size arithmetic
	// comfortably inside an int.
	LimitMaxFragment = 1 << 30
)

// Config sets the limits of a Splitter and a Reassembler. Every node of a
// cluster must use the same values: a receiver requires every non-final
// fragment to be exactly MaxFragment bytes long, and rejects messages above
// MaxMessage, which a sender with the same Config refuses to send.
//
// The zero value means the defaults.
type Config struct {
	// MaxFragment is the maximum encoded size of a fragment in bytes,
	// including the 5-byte header; 0 means DefaultMaxFragment. It must not
	// exceed the GCS message size limit.
	MaxFragment int
	// MaxMessage is the maximum size of a reassembled message in bytes; 0
	// means DefaultMaxMessage. The sender refuses larger payloads and the
	// receiver rejects them, at the first fragment when the count alone
	// proves the message too large.
	MaxMessage int
}

// DefaultConfig returns the default configuration with every field set.
func DefaultConfig() Config {
	return Config{MaxFragment: DefaultMaxFragment, MaxMessage: DefaultMaxMessage}
}

// Validate reports every invalid setting, naming the setting, its value and
// what would work. Zero values are valid and mean the defaults.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFragment != 0 && (c.MaxFragment < HeaderSize+1 || c.MaxFragment > LimitMaxFragment) {
		errs = append(errs, fmt.Errorf(
			"fragment: MaxFragment is %d: use a value from %d (the %d-byte header plus 1 byte of body) to %d, or 0 for the default %d",
			c.MaxFragment, HeaderSize+1, HeaderSize, LimitMaxFragment, DefaultMaxFragment))
	}
	if c.MaxMessage < 0 {
		errs = append(errs, fmt.Errorf(
			"fragment: MaxMessage is %d: use a positive number of bytes, or 0 for the default %d",
			c.MaxMessage, DefaultMaxMessage))
	}
	return errors.Join(errs...)
}

// limits holds a validated Config in the form the hot paths use.
type limits struct {
	maxBody    int // MaxFragment - HeaderSize; 0 in a zero value means the default
	maxMessage int // 0 in a zero value means the default
}

func newLimits(c Config) (limits, error) {
	if err := c.Validate(); err != nil {
		return limits{}, err
	}
	l := limits{maxMessage: c.MaxMessage}
	if c.MaxFragment != 0 {
		l.maxBody = c.MaxFragment - HeaderSize
	}
	return l, nil
}

// body returns the maximum body size, applying the default to a zero value.
func (l limits) body() int {
	if l.maxBody == 0 {
		return DefaultMaxFragment - HeaderSize
	}
	return l.maxBody
}

// message returns the maximum message size, applying the default to a zero
// value.
func (l limits) message() int {
	if l.maxMessage == 0 {
		return DefaultMaxMessage
	}
	return l.maxMessage
}
