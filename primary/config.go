package primary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/fragment"
	"github.com/repld/repld/gcs"
	"github.com/repld/repld/storage"
)

// Mode says what a commit waits for before Finish returns.
type Mode int

// The sync modes. The zero value is Async.
const (
	// Async returns once the transaction is committed locally and its
	// finish is queued for the replicas.
	Async Mode = iota
	// Received also waits until K healthy replicas hold the whole
	// transaction (they acknowledged "received").
	Received
	// Applied also waits until K healthy replicas committed the transaction
	// durably (they acknowledged "applied"), so it is readable there.
	Applied
)

// String returns the mode's name as flags and status spell it.
func (m Mode) String() string {
	switch m {
	case Async:
		return "async"
	case Received:
		return "received"
	case Applied:
		return "applied"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// ParseMode parses "async", "received" or "applied".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Async, Received, Applied} {
		if strings.EqualFold(s, m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("primary: sync mode %q: want async, received or applied", s)
}

// WhenShort says what a commit does when fewer than K replicas are healthy.
type WhenShort int

// The choices for WhenShort. The zero value is Block.
const (
	// Block waits (up to the policy's Timeout) for K healthy replicas to
	// acknowledge, then returns ErrNotReplicated.
	Block WhenShort = iota
	// Degrade returns at once without an error: the cluster runs with less
	// replication than asked, which Status shows as degraded.
	Degrade
)

// String returns "block" or "degrade".
func (w WhenShort) String() string {
	switch w {
	case Block:
		return "block"
	case Degrade:
		return "degrade"
	}
	return fmt.Sprintf("whenshort(%d)", int(w))
}

// ParseWhenShort parses "block" or "degrade".
func ParseWhenShort(s string) (WhenShort, error) {
	for _, w := range []WhenShort{Block, Degrade} {
		if strings.EqualFold(s, w.String()) {
			return w, nil
		}
	}
	return 0, fmt.Errorf("primary: when-short %q: want block or degrade", s)
}

// SyncPolicy is what a commit waits for after it committed locally.
type SyncPolicy struct {
	// Mode is async, received or applied.
	Mode Mode
	// Replicas is K, how many healthy replicas must acknowledge; 0 means 1
	// (ignored in Async mode).
	Replicas int
	// Timeout bounds the wait; 0 means DefaultSyncTimeout. On timeout
	// Finish returns the commit and an error wrapping ErrNotReplicated.
	Timeout time.Duration
	// WhenShort says what happens with fewer than Replicas healthy
	// replicas.
	WhenShort WhenShort
}

// DefaultSyncTimeout is the wait of a policy with a zero Timeout.
const DefaultSyncTimeout = 10 * time.Second

func (s SyncPolicy) withDefaults() SyncPolicy {
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSyncTimeout
	}
	return s
}

// Validate reports a bad setting of the policy.
func (s SyncPolicy) Validate() error {
	s = s.withDefaults()
	var errs []error
	if s.Mode < Async || s.Mode > Applied {
		errs = append(errs, fmt.Errorf("primary: Sync.Mode is %d: use Async, Received or Applied", int(s.Mode)))
	}
	if s.Replicas < 0 {
		errs = append(errs, fmt.Errorf("primary: Sync.Replicas is %d: use 0 (meaning 1) or more", s.Replicas))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("primary: Sync.Timeout is %v: use a positive duration (0 means %v)", s.Timeout, DefaultSyncTimeout))
	}
	if s.WhenShort != Block && s.WhenShort != Degrade {
		errs = append(errs, fmt.Errorf("primary: Sync.WhenShort is %d: use Block or Degrade", int(s.WhenShort)))
	}
	return errors.Join(errs...)
}

// syncKey is the context key of WithSync.
type syncKey struct{}

// WithSync returns a context under which commits use policy instead of the
// Primary's configured one: pass it to Finish (or FinishAt) of the
// transactions that need a stronger or weaker guarantee.
func WithSync(ctx context.Context, policy SyncPolicy) context.Context {
	return context.WithValue(ctx, syncKey{}, policy)
}

// DefaultGroup is the gcs group name of a zero Config.Group.
const DefaultGroup = "repld"

// DefaultHeartbeatInterval is the heartbeat period of a zero
// Config.HeartbeatInterval.
const DefaultHeartbeatInterval = time.Second

// Config configures a Primary. Zero fields take their defaults.
type Config struct {
	// Name is the node's name, shown in Status. Required.
	Name string
	// DataDir holds the registry of replicas and the epoch. Required.
	DataDir string
	// Store is the local store. The Primary owns it and closes it on Close.
	// Required.
	Store storage.Storage
	// Node is the gcs node the Primary creates its group on. Not owned: the
	// caller closes it after the Primary. Required.
	Node *gcs.Node
	// Group is the gcs group name; empty means DefaultGroup.
	Group string
	// Epoch, if greater than the epoch persisted in DataDir, replaces it
	// (a promotion). 0 keeps the persisted epoch (1 for a new DataDir).
	Epoch uint64
	// Sync is the default sync policy of commits.
	Sync SyncPolicy
	// HeartbeatInterval is how often replicas are told the last TID (they
	// measure their lag with it) and the registry is saved; 0 means
	// DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Fragment is the largest fragment in bytes, header included; 0 means
	// fragment.DefaultMaxFragment. Every node must use the same value, at
	// most the gcs node's MaxMessage.
	Fragment int
	// Now is the clock TIDs are chosen from; nil means time.Now.
	Now func() time.Time
	// Logger receives the primary's messages; nil discards them.
	Logger *zap.Logger
}

// DefaultConfig returns a Config with every optional field at its default;
// the caller sets Name, DataDir, Store and Node.
func DefaultConfig() Config {
	return Config{
		Group:             DefaultGroup,
		Sync:              SyncPolicy{Mode: Async}.withDefaults(),
		HeartbeatInterval: DefaultHeartbeatInterval,
		Fragment:          fragment.DefaultMaxFragment,
	}
}

func (c Config) withDefaults() Config {
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	c.Sync = c.Sync.withDefaults()
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.Fragment == 0 {
		c.Fragment = fragment.DefaultMaxFragment
	}
	if c.Now == nil {
		c.Now = time.Now
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
	if c.Name == "" {
		errs = append(errs, errors.New("primary: Config.Name is empty: set the node's name"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("primary: Config.DataDir is empty: set a directory for the registry and epoch"))
	}
	if c.Store == nil {
		errs = append(errs, errors.New("primary: Config.Store is nil: pass the local storage.Storage"))
	}
	if c.Node == nil {
		errs = append(errs, errors.New("primary: Config.Node is nil: pass the gcs node to create the group on"))
	}
	if c.HeartbeatInterval < 0 {
		errs = append(errs, fmt.Errorf("primary: Config.HeartbeatInterval is %v: use a positive duration", c.HeartbeatInterval))
	}
	if err := (fragment.Config{MaxFragment: c.Fragment}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("primary: Config.Fragment is %d: %w", c.Fragment, err))
	}
	if err := c.Sync.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
