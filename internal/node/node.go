package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/internal/admin"
	"github.com/repld/repld/internal/datadir"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
)

// Role is what a node does.
type Role string

// Roles of a node.
const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Config configures a Node. Every field but Logger and Now is required;
// Replica.Primary is required to start as a replica.
type Config struct {
	// Name is the node's name in both roles.
	Name string
	// DataDir holds the node's state files (epoch, registry, quarantine
	// marker) in both roles.
	DataDir string
	// GCS is the node's gcs node, kept across role switches; not owned.
	GCS *gcs.Node
	// OpenStore opens the node's store; the role that uses it closes it.
	OpenStore func(ctx context.Context) (storage.Storage, error)
	// RemoveStore deletes the closed store's data, so that the next
	// OpenStore opens it empty (resync).
	RemoveStore func() error
	// Primary and Replica are the settings of each role; Name, DataDir,
	// Store and Node (and the primary's Epoch, the replica's Primary on
	// follow) are set by the Node.
	Primary primary.Config
	Replica replica.Config
	// Logger receives the node's events; nil discards them.
	Logger *zap.Logger
	// Now is the clock of quarantine times; nil means time.Now.
	Now func() time.Time
}

// Validate reports every missing setting, naming it and the fix.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("node: "+format, args...)) }
	if c.Name == "" {
		bad("Name is empty: set the node's name")
	}
	if c.DataDir == "" {
		bad("DataDir is empty: set the directory of the node's state files")
	}
	if c.GCS == nil {
		bad("GCS is nil: pass the node's gcs node")
	}
	if c.OpenStore == nil {
		bad("OpenStore is nil: pass a function opening the node's store")
	}
	if c.RemoveStore == nil {
		bad("RemoveStore is nil: pass a function deleting the node's closed store (for resync)")
	}
	return errors.Join(errs...)
}

// Node is one repld node running as primary or replica. Its methods are
// safe for concurrent use.
type Node struct {
	cfg Config
	log *zap.Logger

	// ctl serialises control operations and Close.
	ctl sync.Mutex

	mu sync.Mutex // guards the fields below
	p  *primary.Primary
	r  *replica.Replica
	// store is what the admin server reads: the current role's store, or
	// the last one (closed) while no role runs.
	store storage.Storage
	// following is the gcs address of the primary the replica follows.
	following string
	// broken is why no role runs after a failed switch.
	broken error
	closed bool
}

// Open starts the node in role: the store is opened with cfg.OpenStore
// and the role on it. ctx bounds the opening.
func Open(ctx context.Context, cfg Config, role Role) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	n := &Node{cfg: cfg, log: cfg.Logger.Named("node").With(zap.String("name", cfg.Name))}
	var err error
	switch role {
	case RolePrimary:
		err = n.startPrimary(ctx, 0)
	case RoleReplica:
		if cfg.Replica.Primary == "" {
			return nil, errors.New("node: Replica.Primary is empty: set the primary's gcs address (HOST:PORT)")
		}
		err = n.startReplica(ctx, cfg.Replica.Primary)
	default:
		return nil, fmt.Errorf("node: role %q: use %q or %q", role, RolePrimary, RoleReplica)
	}
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Role returns the node's current role, "" while none runs.
func (n *Node) Role() Role {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.p != nil:
		return RolePrimary
	case n.r != nil:
		return RoleReplica
	}
	return ""
}

// Primary returns the running primary, nil in another role.
func (n *Node) Primary() *primary.Primary {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.p
}

// Replica returns the running replica, nil in another role.
func (n *Node) Replica() *replica.Replica {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.r
}

// Store returns what the admin server reads: the primary, the replica's
// read view, or (between roles) the last one, which answers
// storage.ErrClosed.
func (n *Node) Store() storage.Storage {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.store
}

// ReplicaStatus is a replica node's status: the replica's, and its
// catch-up progress while it catches up.
type ReplicaStatus struct {
	replica.Status
	CatchUp *CatchUp `json:"catch_up,omitempty"`
}

// CatchUp is a catching-up replica's progress: it has applied every
// transaction up to DoneTID of those up to TargetTID, the primary's last
// TID as its heartbeats tell.
type CatchUp struct {
	DoneTID   storage.TID `json:"done_tid"`
	TargetTID storage.TID `json:"target_tid"`
}

// IdleStatus is the status of a node running no role after a failed
// switch.
type IdleStatus struct {
	Name  string `json:"name"`
	Role  string `json:"role"` // "none"
	State string `json:"state"`
	Error string `json:"error"`
}

// Status returns the current role's status: a primary.Status, a
// ReplicaStatus or an IdleStatus.
func (n *Node) Status() any {
	n.mu.Lock()
	p, r, broken := n.p, n.r, n.broken
	n.mu.Unlock()
	switch {
	case p != nil:
		return p.Status()
	case r != nil:
		return replicaStatus(r.Status())
	}
	why := "switching role"
	if broken != nil {
		why = broken.Error()
	}
	return IdleStatus{Name: n.cfg.Name, Role: "none", State: "down", Error: why}
}

func replicaStatus(s replica.Status) ReplicaStatus {
	out := ReplicaStatus{Status: s}
	if s.State == replica.StateCatchingUp {
		out.CatchUp = &CatchUp{DoneTID: s.LastTID, TargetTID: max(s.LastTID, s.PrimaryLastTID)}
	}
	return out
}

// Health reports why the node should not serve: a quarantined replica, or
// no role running.
func (n *Node) Health() error {
	switch s := n.Status().(type) {
	case ReplicaStatus:
		if q := s.Quarantine; q != nil {
			return fmt.Errorf("replica %s is quarantined: %s", s.Name, q.Reason)
		}
	case IdleStatus:
		return fmt.Errorf("node %s runs no role: %s", s.Name, s.Error)
	}
	return nil
}

// Close stops the current role, which closes the store. The gcs node is
// the caller's.
func (n *Node) Close() error {
	n.ctl.Lock()
	defer n.ctl.Unlock()
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.stopRole()
}

// startPrimary opens the store and a primary on it with at least epoch.
func (n *Node) startPrimary(ctx context.Context, epoch uint64) error {
	s, err := n.cfg.OpenStore(ctx)
	if err != nil {
		return n.setBroken(fmt.Errorf("node: open store: %w", err))
	}
	pc := n.cfg.Primary
	pc.Name, pc.DataDir, pc.Store, pc.Node, pc.Epoch = n.cfg.Name, n.cfg.DataDir, s, n.cfg.GCS, max(pc.Epoch, epoch)
	if pc.Logger == nil {
		pc.Logger = n.cfg.Logger
	}
	p, err := primary.Open(ctx, pc)
	if err != nil {
		return n.setBroken(errors.Join(fmt.Errorf("node: open primary: %w", err), s.Close()))
	}
	n.mu.Lock()
	n.p, n.store, n.broken = p, p, nil
	n.mu.Unlock()
	return nil
}

// startReplica opens the store and a replica on it following addr.
func (n *Node) startReplica(ctx context.Context, addr string) error {
	s, err := n.cfg.OpenStore(ctx)
	if err != nil {
		return n.setBroken(fmt.Errorf("node: open store: %w", err))
	}
	rc := n.cfg.Replica
	rc.Name, rc.DataDir, rc.Store, rc.Node, rc.Primary = n.cfg.Name, n.cfg.DataDir, s, n.cfg.GCS, addr
	if rc.Logger == nil {
		rc.Logger = n.cfg.Logger
	}
	r, err := replica.Open(ctx, rc)
	if err != nil {
		return n.setBroken(errors.Join(fmt.Errorf("node: open replica: %w", err), s.Close()))
	}
	n.mu.Lock()
	n.r, n.store, n.following, n.broken = r, r.ReadView(), addr, nil
	n.mu.Unlock()
	return nil
}

func (n *Node) setBroken(err error) error {
	n.mu.Lock()
	n.broken = err
	n.mu.Unlock()
	n.log.Error("node runs no role", zap.Error(err))
	return err
}

// stopRole closes the running role (and with it the store).
func (n *Node) stopRole() error {
	n.mu.Lock()
	p, r := n.p, n.r
	n.p, n.r = nil, nil
	n.mu.Unlock()
	var err error
	switch {
	case p != nil:
		err = p.Close()
	case r != nil:
		err = r.Close()
	}
	if err != nil {
		n.log.Warn("close role", zap.Error(err))
	}
	return err
}

// Result is the answer of a control operation: what the node did and its
// status afterwards.
type Result struct {
	Node   string `json:"node"`
	Action string `json:"action"`
	Did    string `json:"did"`
	// Listen is the gcs address the promoted node's replicas follow (set
	// by Promote only), so a tool can tell the other replicas where to
	// go without knowing the node's flags.
	Listen string `json:"listen,omitempty"`
	Status any    `json:"status"`
}

func (n *Node) result(action, did string) Result {
	return Result{Node: n.cfg.Name, Action: action, Did: did, Status: n.Status()}
}

// begin takes the control lock and checks the node is open; the caller
// unlocks n.ctl.
func (n *Node) begin() error {
	n.ctl.Lock()
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		n.ctl.Unlock()
		return fmt.Errorf("%w: node %s is closing", admin.ErrRefused, n.cfg.Name)
	}
	return nil
}

// asReplica checks the node runs as a replica (or, with orIdle, no role).
func (n *Node) asReplica(action string, orIdle bool) error {
	switch n.Role() {
	case RoleReplica:
		return nil
	case RolePrimary:
		return fmt.Errorf("%w: %s: node %s is the primary; %s applies to replicas", admin.ErrRefused, action, n.cfg.Name, action)
	}
	if orIdle {
		return nil
	}
	return fmt.Errorf("%w: %s: node %s runs no role (%v); release or resync it first", admin.ErrRefused, action, n.cfg.Name, n.Health())
}

// restartReplica closes the replica, runs between and starts the replica
// again following addr; the replica starts even if between failed, and
// between's error is returned.
func (n *Node) restartReplica(ctx context.Context, addr string, between func() error) error {
	_ = n.stopRole()
	var berr error
	if between != nil {
		berr = between()
	}
	return errors.Join(berr, n.startReplica(ctx, addr))
}

// followed returns the primary address the replica follows.
func (n *Node) followed() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.following
}

// Quarantine implements admin.Control: it quarantines the replica by
// restarting it on an operator's marker.
func (n *Node) Quarantine(ctx context.Context, reason string) (any, error) {
	if err := n.begin(); err != nil {
		return nil, err
	}
	defer n.ctl.Unlock()
	if err := n.asReplica("quarantine", false); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	if s := n.Replica().Status(); s.Quarantine != nil {
		return n.result("quarantine", "already quarantined: "+s.Quarantine.Reason), nil
	}
	err := n.restartReplica(ctx, n.followed(), func() error {
		return replica.MarkQuarantined(n.cfg.DataDir, reason, n.cfg.Now())
	})
	if err != nil {
		return nil, err
	}
	n.log.Warn("quarantined by an operator", zap.String("reason", reason))
	return n.result("quarantine", "quarantined; the primary is told in the replica's hello"), nil
}

// Release implements admin.Control: it removes the quarantine marker and
// restarts the replica, which catches up from its last transaction. The
// primary must have released the replica first.
func (n *Node) Release(ctx context.Context) (any, error) {
	if err := n.begin(); err != nil {
		return nil, err
	}
	defer n.ctl.Unlock()
	if err := n.asReplica("release", true); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	err := n.restartReplica(ctx, n.followed(), func() error { return replica.ClearQuarantine(n.cfg.DataDir) })
	if err != nil {
		return nil, err
	}
	n.log.Info("released: catching up from the last transaction")
	return n.result("release", "quarantine lifted; catching up from the last transaction"), nil
}

// Resync implements admin.Control: it deletes the replica's store and
// restarts it empty, without a quarantine marker, so it catches up from
// nothing. The primary must have released the replica first.
func (n *Node) Resync(ctx context.Context) (any, error) {
	if err := n.begin(); err != nil {
		return nil, err
	}
	defer n.ctl.Unlock()
	if err := n.asReplica("resync", true); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	err := n.restartReplica(ctx, n.followed(), func() error {
		return errors.Join(n.cfg.RemoveStore(), replica.ClearQuarantine(n.cfg.DataDir))
	})
	if err != nil {
		return nil, err
	}
	n.log.Info("resync: store removed, catching up from empty")
	return n.result("resync", "store replaced by an empty one; catching up from the primary"), nil
}

// Follow implements admin.Control: the replica follows the primary at
// addr from its last transaction; a primary steps down and becomes a
// replica of it.
func (n *Node) Follow(ctx context.Context, addr string) (any, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%w: follow %q: not HOST:PORT (%v)", admin.ErrRefused, addr, err)
	}
	if err := n.begin(); err != nil {
		return nil, err
	}
	defer n.ctl.Unlock()
	ctx = context.WithoutCancel(ctx)
	did := "following " + addr
	if n.Role() == RolePrimary {
		did = "stepped down from primary; " + did
	}
	if err := n.restartReplica(ctx, addr, nil); err != nil {
		return nil, err
	}
	n.log.Info("follow", zap.String("primary", addr))
	return n.result("follow", did), nil
}

// Promote implements admin.Control: the replica becomes the primary on its
// store with its epoch + 1 (at least 2). A quarantined replica is refused.
func (n *Node) Promote(ctx context.Context) (any, error) {
	if err := n.begin(); err != nil {
		return nil, err
	}
	defer n.ctl.Unlock()
	if err := n.asReplica("promote", false); err != nil {
		return nil, err
	}
	if q := n.Replica().Status().Quarantine; q != nil {
		return nil, fmt.Errorf("%w: promote: replica %s is quarantined (%s); release or resync it first", admin.ErrRefused, n.cfg.Name, q.Reason)
	}
	ctx = context.WithoutCancel(ctx)
	addr := n.followed()
	// Closing the replica waits for its pipelined finishes and aborts
	// what was not finished: the store holds every applied transaction.
	_ = n.stopRole()
	epoch, err := datadir.ReadEpoch(n.cfg.DataDir)
	if err == nil {
		err = n.startPrimary(ctx, max(epoch, 1)+1)
	}
	if err != nil {
		// Back to what it was, so the node keeps serving reads.
		return nil, errors.Join(fmt.Errorf("node: promote: %w", err), n.startReplica(ctx, addr))
	}
	p := n.Primary()
	n.log.Warn("promoted to primary", zap.Uint64("epoch", p.Epoch()))
	res := n.result("promote", fmt.Sprintf("promoted to primary with epoch %d", p.Epoch()))
	res.Listen = n.cfg.GCS.Addr().String()
	return res, nil
}

// QuarantineReplica implements admin.Control on the primary.
func (n *Node) QuarantineReplica(_ context.Context, name, reason string) (any, error) {
	p, err := n.asPrimary("quarantine replica " + name)
	if err != nil {
		return nil, err
	}
	st, err := p.QuarantineReplica(name, reason)
	if errors.Is(err, primary.ErrUnknownReplica) {
		return nil, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return Result{Node: n.cfg.Name, Action: "quarantine-replica", Did: "recorded the quarantine of " + name, Status: st}, nil
}

// ReleaseReplica implements admin.Control on the primary.
func (n *Node) ReleaseReplica(_ context.Context, name string) (any, error) {
	p, err := n.asPrimary("release replica " + name)
	if err != nil {
		return nil, err
	}
	st, err := p.ReleaseReplica(name)
	if errors.Is(err, primary.ErrUnknownReplica) {
		return nil, fmt.Errorf("%w: %w", admin.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return Result{Node: n.cfg.Name, Action: "release-replica", Did: "cleared the registry quarantine of " + name, Status: st}, nil
}

func (n *Node) asPrimary(action string) (*primary.Primary, error) {
	p := n.Primary()
	if p == nil {
		return nil, fmt.Errorf("%w: %s: node %s is not the primary; send it to the primary", admin.ErrRefused, action, n.cfg.Name)
	}
	return p, nil
}

var _ admin.Control = (*Node)(nil)
