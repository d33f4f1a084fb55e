package replica

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/storage"
)

// Defaults of Config fields left at zero.
const (
	DefaultGroup          = "repld"
	DefaultJoinBackoffMin = 50 * time.Millisecond
	DefaultJoinBackoffMax = 2 * time.Second
	DefaultJoinTimeout    = 10 * time.Second
)

// Config configures a Replica. Zero fields take their defaults; Name,
// DataDir, Store, Node and Primary are required.
type Config struct {
	// Name is the replica's name, the one the primary's registry knows it
	// by; it must stay the same across restarts.
	Name string
	// DataDir holds the quarantine marker and the epoch.
	DataDir string
	// Store is the local writable store; the Replica owns it and closes it
	// on Close.
	Store storage.Storage
	// Node is the gcs node to join the primary's group with; not owned.
	Node *gcs.Node
	// Primary is the contact address of the primary's gcs node.
	Primary string
	// Group is the replication group's name; default DefaultGroup.
	Group string
	// Fragment is the largest fragment in bytes, header included; 0 means
	// fragment.DefaultMaxFragment. The same on every node.
	Fragment int
	// JoinBackoffMin and JoinBackoffMax bound the wait between attempts to
	// join the primary's group while it is unreachable; the wait doubles
	// from the first to the second.
	JoinBackoffMin, JoinBackoffMax time.Duration
	// JoinTimeout bounds one join attempt.
	JoinTimeout time.Duration
	// Logger receives the replica's events; nil discards them.
	Logger *zap.Logger
	// Now is the clock of quarantine times; nil means time.Now.
	Now func() time.Time
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.JoinBackoffMin == 0 {
		c.JoinBackoffMin = DefaultJoinBackoffMin
	}
	if c.JoinBackoffMax == 0 {
		c.JoinBackoffMax = max(DefaultJoinBackoffMax, c.JoinBackoffMin)
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every bad setting (after defaults), each naming the
// setting, its value and the fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("replica: "+format, args...)) }
	if c.Name == "" || len(c.Name) > gcs.MaxNameLen {
		bad("Name %q: set a name of 1 to %d bytes, the same across restarts", c.Name, gcs.MaxNameLen)
	}
	if c.DataDir == "" {
		bad("DataDir is empty: set the directory for the quarantine marker and epoch")
	}
	if c.Store == nil {
		bad("Store is nil: pass the local writable store")
	}
	if c.Node == nil {
		bad("Node is nil: pass the gcs node to join the primary's group with")
	}
	if c.Primary == "" {
		bad("Primary is empty: set the primary's gcs address (HOST:PORT)")
	}
	if c.Fragment < 0 {
		bad("Fragment %d: set the fragment size in bytes, or 0 for the default", c.Fragment)
	}
	if c.JoinBackoffMin < 0 || c.JoinBackoffMax < c.JoinBackoffMin {
		bad("JoinBackoffMin %v, JoinBackoffMax %v: set 0 < min <= max, or 0 for the defaults %v and %v",
			c.JoinBackoffMin, c.JoinBackoffMax, DefaultJoinBackoffMin, DefaultJoinBackoffMax)
	}
	if c.JoinTimeout < 0 {
		bad("JoinTimeout %v: set a positive duration, or 0 for the default %v", c.JoinTimeout, DefaultJoinTimeout)
	}
	return errors.Join(errs...)
}
