package remote

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/wire"
)

// Defaults of Config.
const (
	DefaultCacheObjects = 10000
	DefaultCacheBytes   = 64 << 20
	DefaultCallTimeout  = time.Minute
	DefaultDialTimeout  = 5 * time.Second
	DefaultBackoffMin   = 50 * time.Millisecond
	DefaultBackoffMax   = 2 * time.Second
	// DefaultMaxQueued bounds the bytes a connection queues for sending.
	DefaultMaxQueued = 256 << 20
)

// Config configures a Client. Primary is required; zero fields take their
// defaults.
type Config struct {
	// Primary lists client ports (host:port) of nodes that may be the
	// primary. The client uses the first that says it is the primary, and
	// looks again after losing it (after a promotion it finds the new one).
	Primary []string
	// AnyRole accepts a node of any role at a Primary address: a client of
	// one replica, for reading (its writes fail with storage.ErrReadOnly).
	AnyRole bool
	// Replicas lists client ports of replicas to read from (optional).
	// Reads never see state older than what the client has already seen or
	// written: a replica waits to catch up that far, or the read goes to
	// the primary.
	Replicas []string
	// TLS, if set, makes every connection TLS.
	TLS *tls.Config
	// CacheObjects bounds the number of objects in the cache (0: default,
	// negative: no cache). CacheBytes bounds their total size (0: default).
	CacheObjects int
	CacheBytes   int
	// CallTimeout bounds each call that has no earlier deadline in its
	// context; DialTimeout bounds connecting to one node.
	CallTimeout, DialTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnection
	// rounds; it doubles from one to the other.
	BackoffMin, BackoffMax time.Duration
	// Wire sets the codec's limits; the same as the servers'.
	Wire wire.Config
	// Logger receives the client's messages; nil discards them.
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	if c.CacheObjects == 0 {
		c.CacheObjects = DefaultCacheObjects
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
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
	if len(c.Primary) == 0 {
		errs = append(errs, errors.New("remote: Config.Primary is empty: list the client port (host:port) of the primary, and of nodes that may be promoted"))
	}
	for _, list := range []struct {
		name  string
		addrs []string
	}{{"Primary", c.Primary}, {"Replicas", c.Replicas}} {
		for _, a := range list.addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("remote: Config.%s has %q, not host:port (%v): use e.g. 127.0.0.1:7002", list.name, a, err))
			}
		}
	}
	if c.CacheBytes < 0 {
		errs = append(errs, fmt.Errorf("remote: Config.CacheBytes is %d: use a positive byte count, 0 for %d (CacheObjects < 0 turns the cache off)", c.CacheBytes, DefaultCacheBytes))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"CallTimeout", c.CallTimeout}, {"DialTimeout", c.DialTimeout}, {"BackoffMin", c.BackoffMin}, {"BackoffMax", c.BackoffMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("remote: Config.%s is %v: use a positive duration, or 0 for the default", d.name, d.v))
		}
	}
	if c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("remote: Config.BackoffMax %v is below BackoffMin %v: raise it", c.BackoffMax, c.BackoffMin))
	}
	if err := c.Wire.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("remote: Config.Wire: %w", err))
	}
	return errors.Join(errs...)
}
