package gcs

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Limits that are part of the protocol: identifiers travel with a one-byte
// length and frames with a four-byte one.
const (
	// MaxNameLen is the longest node name, group name or member id, in bytes.
	MaxNameLen = 255
	// MaxMessageLimit is the largest MaxMessage a Config may set.
	MaxMessageLimit   = 64 << 20
	maxWindowMessages = 1 << 20
)

// Defaults of the failure detector's timings.
const (
	// DefaultHeartbeatInterval is Config.HeartbeatInterval's default.
	DefaultHeartbeatInterval = 250 * time.Millisecond
	// DefaultFailureTimeout is Config.FailureTimeout's default.
	DefaultFailureTimeout = 3 * time.Second
)

// Config configures a Node. Start from DefaultConfig; a zero numeric field
// takes its default, so only Name must be set.
type Config struct {
	// Name identifies this node in member ids ("name#N") and logs.
	Name string

	// MaxMessage is the largest message, in bytes, that may be sent or
	// received. Every node of a group must use the same value; a join with
	// another value is refused. Default 102400.
	MaxMessage int

	// HeartbeatInterval is how often a link sends a heartbeat when it has
	// nothing else to send. Default 250ms.
	HeartbeatInterval time.Duration

	// FailureTimeout is how long a link may stay silent before it is
	// considered dead; a coordinator also removes a member that stays
	// disconnected this long, and a member reports ErrCoordinatorLost after
	// failing to reach its coordinator this long. At least two heartbeat
	// intervals. Default 3s.
	FailureTimeout time.Duration

	// SlowMemberTimeout bounds how long a send waits for a connected member
	// whose flow-control window is full; the member is then evicted.
	// Default 5s.
	SlowMemberTimeout time.Duration

	// WindowMessages and WindowBytes bound, per member and per direction,
	// the messages sent and not yet acknowledged: the flow-control window
	// while connected and the retransmission buffer while disconnected.
	// WindowBytes counts message bodies and must be at least MaxMessage.
	// A coordinator uses the smaller of its own and the member's window.
	// Defaults 4096 and 16 MiB.
	WindowMessages int
	WindowBytes    int

	// ReconnectMin and ReconnectMax bound the backoff, with jitter, between
	// a member's attempts to reach its coordinator. Defaults 50ms and 2s.
	ReconnectMin time.Duration
	ReconnectMax time.Duration

	// Logger receives connection and membership events; nil discards them.
	Logger *slog.Logger

	// Rand supplies session ids and backoff jitter; nil means a generator
	// seeded from crypto/rand. Tests pass a seeded one for repeatable runs.
	// The Node serialises its use.
	Rand *rand.Rand
}

// DefaultConfig returns the defaults with the given node name.
func DefaultConfig(name string) Config {
	return Config{Name: name}.withDefaults()
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxMessage, 102400)
	defDur(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	defDur(&c.FailureTimeout, DefaultFailureTimeout)
	defDur(&c.SlowMemberTimeout, 5*time.Second)
	def(&c.WindowMessages, 4096)
	def(&c.WindowBytes, 16<<20)
	defDur(&c.ReconnectMin, 50*time.Millisecond)
	defDur(&c.ReconnectMax, 2*time.Second)
	return c
}

// Validate reports every problem of the configuration (after defaults are
// applied to zero fields) in one error; each names the setting, its value and
// what would work.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("gcs: config: "+format, args...))
	}
	if c.Name == "" || len(c.Name) > MaxNameLen-12 {
		bad("Name %q has %d bytes: set 1 to %d bytes, e.g. the host name", c.Name, len(c.Name), MaxNameLen-12)
	}
	if c.MaxMessage < 1 || c.MaxMessage > MaxMessageLimit {
		bad("MaxMessage %d out of range: set 1 to %d (default 102400), the same on every node", c.MaxMessage, MaxMessageLimit)
	}
	if c.HeartbeatInterval < time.Millisecond {
		bad("HeartbeatInterval %v too small: set at least 1ms (default 250ms)", c.HeartbeatInterval)
	}
	if c.FailureTimeout < 2*c.HeartbeatInterval {
		bad("FailureTimeout %v is less than two HeartbeatIntervals (%v): set at least %v", c.FailureTimeout, c.HeartbeatInterval, 2*c.HeartbeatInterval)
	}
	if c.SlowMemberTimeout < 0 {
		bad("SlowMemberTimeout %v is negative: set a positive duration (default 5s)", c.SlowMemberTimeout)
	}
	if c.WindowMessages < 1 || c.WindowMessages > maxWindowMessages {
		bad("WindowMessages %d out of range: set 1 to %d (default 4096)", c.WindowMessages, maxWindowMessages)
	}
	if c.WindowBytes < c.MaxMessage {
		bad("WindowBytes %d is less than MaxMessage %d: set at least %d (default 16 MiB)", c.WindowBytes, c.MaxMessage, c.MaxMessage)
	}
	if c.ReconnectMin < 0 {
		bad("ReconnectMin %v is negative: set a positive duration (default 50ms)", c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		bad("ReconnectMax %v is less than ReconnectMin %v: set at least %v", c.ReconnectMax, c.ReconnectMin, c.ReconnectMin)
	}
	return errors.Join(errs...)
}

func validGroupName(group string) error {
	if group == "" || len(group) > MaxNameLen {
		return fmt.Errorf("gcs: group name %q has %d bytes: use 1 to %d bytes", group, len(group), MaxNameLen)
	}
	return nil
}
