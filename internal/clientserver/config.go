package clientserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// Roles a node reports to a client's role call.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Defaults of Config.
const (
	DefaultMaxWait      = 2 * time.Second
	DefaultMaxInFlight  = 256
	DefaultMaxTxns      = 1024
	DefaultMaxQueued    = 256 << 20
	DefaultWriteTimeout = 30 * time.Second
	DefaultPageTxns     = 256
	DefaultPageBytes    = 8 << 20
	defaultReadBuffer   = 64 << 10
	maxConfigCount      = 1 << 20
)

// Config configures a Server. Zero fields take their defaults; Store is
// required.
type Config struct {
	// Store serves the clients: a primary (read-write), or a replica's
	// read-only view with ReadOnly set. The server does not close it.
	Store storage.Storage
	// Hub announces commits; nil makes a new one. Commits made through the
	// server are published to it; commits made elsewhere must be too
	// (Notifying, Follow), or clients never hear of them.
	Hub *Hub
	// Announced says that every commit to Store already reaches Hub (the
	// store commits through Notifying), so the server does not announce its
	// clients' commits a second time.
	Announced bool
	// ReadOnly marks a replica: the role call answers RoleReplica and the
	// server relies on Store to refuse writes (storage.ReadOnly does).
	ReadOnly bool
	// Role, if set, answers the role call instead of ReadOnly: a node that
	// can be promoted reports what it is now.
	Role func() string
	// MaxWait bounds how long a read waits for the node to reach the TID
	// the client needs before answering ClientErrBehind.
	MaxWait time.Duration
	// MaxInFlight bounds the requests of one connection served at once;
	// more wait for a free slot, and reading the connection waits with
	// them.
	MaxInFlight int
	// MaxTxns bounds the open transactions of one connection.
	MaxTxns int
	// MaxQueued bounds the bytes waiting to be sent on one connection:
	// answers wait for room, and invalidations that find no room
	// disconnect the client. At least the largest message.
	MaxQueued int
	// WriteTimeout bounds each write to a client; a client that does not
	// read for that long is disconnected.
	WriteTimeout time.Duration
	// PageTxns and PageBytes bound one page of an iteration.
	PageTxns, PageBytes int
	// Wire sets the codec's limits; the same on clients and servers.
	Wire wire.Config
	// TLS, if set, makes Listen serve TLS.
	TLS *tls.Config
	// Logger receives the server's messages; nil discards them.
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	set(&c.MaxInFlight, DefaultMaxInFlight)
	set(&c.MaxTxns, DefaultMaxTxns)
	set(&c.MaxQueued, DefaultMaxQueued)
	set(&c.PageTxns, DefaultPageTxns)
	set(&c.PageBytes, DefaultPageBytes)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate reports every bad setting, each naming the setting, its value
// and the fix.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("clientserver: Config.Store is nil: pass the storage to serve"))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("clientserver: Config.MaxWait is %v: use a positive duration, or 0 for %v", c.MaxWait, DefaultMaxWait))
	}
	if c.WriteTimeout < 0 {
		errs = append(errs, fmt.Errorf("clientserver: Config.WriteTimeout is %v: use a positive duration, or 0 for %v", c.WriteTimeout, DefaultWriteTimeout))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxInFlight", c.MaxInFlight}, {"MaxTxns", c.MaxTxns}, {"PageTxns", c.PageTxns}} {
		if f.v < 0 || f.v > maxConfigCount {
			errs = append(errs, fmt.Errorf("clientserver: Config.%s is %d: use 1 to %d, or 0 for the default", f.name, f.v, maxConfigCount))
		}
	}
	if c.PageBytes < 0 {
		errs = append(errs, fmt.Errorf("clientserver: Config.PageBytes is %d: use a positive byte count, or 0 for %d", c.PageBytes, DefaultPageBytes))
	}
	if err := c.Wire.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("clientserver: Config.Wire: %w", err))
	} else if max := wireMax(c.Wire); c.MaxQueued < max {
		errs = append(errs, fmt.Errorf("clientserver: Config.MaxQueued is %d: use at least %d (the largest message), or 0 for %d", c.MaxQueued, max, DefaultMaxQueued))
	}
	return errors.Join(errs...)
}

// wireMax returns the largest message of a wire config.
func wireMax(c wire.Config) int {
	if c.MaxMessageLen == 0 {
		return wire.DefaultMaxMessageLen
	}
	return c.MaxMessageLen
}
