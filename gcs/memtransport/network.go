package memtransport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Errors callers branch on with errors.Is. Errors returned by connections and
// layers are *net.OpError values wrapping one of these, net.ErrClosed,
// os.ErrDeadlineExceeded or a context error.
var (
	// ErrRefused: no layer listens at the dialed address (or it closed
	// before accepting the connection).
	ErrRefused = errors.New("memtransport: connection refused")
	// ErrUnreachable: the link between the two nodes is partitioned or one
	// of them is isolated.
	ErrUnreachable = errors.New("memtransport: network unreachable (partitioned)")
	// ErrReset: the connection was broken by a fault (partition, isolation,
	// CloseLinks, a drop, Network.Close); bytes in flight are lost.
	ErrReset = errors.New("memtransport: connection reset")
	// ErrPeerClosed: a write after the peer closed its end.
	ErrPeerClosed = errors.New("memtransport: broken pipe (peer closed the connection)")
	// ErrAddrInUse: Listen on an address another open layer holds.
	ErrAddrInUse = errors.New("memtransport: address already in use")
)

// Defaults applied to zero Config fields.
const (
	DefaultBufferSize    = 256 << 10
	DefaultAcceptBacklog = 128
)

// Config configures a Network. The zero value is valid and means the
// defaults.
type Config struct {
	// BufferSize is the number of bytes one direction of a connection holds
	// before writes block (delayed bytes count). 0 means DefaultBufferSize.
	BufferSize int
	// AcceptBacklog is how many dialed connections may wait for Accept
	// before Dial blocks. 0 means DefaultAcceptBacklog.
	AcceptBacklog int
	// Seed seeds the random source of drop faults when Rand is nil, so runs
	// are repeatable.
	Seed uint64
	// Rand, if set, is the random source of drop faults. The Network uses it
	// only while holding its lock; do not share it with other users.
	Rand *rand.Rand
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{BufferSize: DefaultBufferSize, AcceptBacklog: DefaultAcceptBacklog}
}

// Validate reports every invalid setting, each with its value and how to
// fix it.
func (c Config) Validate() error {
	var errs []error
	if c.BufferSize < 0 {
		errs = append(errs, fmt.Errorf("memtransport: Config.BufferSize is %d: set a positive byte count, or 0 for the default %d", c.BufferSize, DefaultBufferSize))
	}
	if c.AcceptBacklog < 0 {
		errs = append(errs, fmt.Errorf("memtransport: Config.AcceptBacklog is %d: set a positive count, or 0 for the default %d", c.AcceptBacklog, DefaultAcceptBacklog))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
	}
	if c.AcceptBacklog == 0 {
		c.AcceptBacklog = DefaultAcceptBacklog
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15))
	}
	return c
}

// Stats are cumulative counters of a Network, for test assertions.
type Stats struct {
	Dials      int // Dial calls
	DialErrors int // Dial calls that failed (refused, unreachable, canceled, closed)
	Opened     int // connections established (queued for Accept)
	Broken     int // connections reset by Partition, Isolate, CloseLinks, a drop or Network.Close
	Dropped    int // connections broken by a drop fault
	Open       int // connections currently established and not broken or fully closed
}

// link is a directed link: bytes written by from's end towards to.
type link struct{ from, to string }

// pairKey is an unordered pair of node addresses.
type pairKey [2]string

func keyOf(a, b string) pairKey {
	if b < a {
		a, b = b, a
	}
	return pairKey{a, b}
}

// Network is an in-memory network of Layers. Its methods are safe for
// concurrent use.
type Network struct {
	cfg Config

	mu         sync.Mutex
	closed     bool
	layers     map[string]*Layer
	conns      map[*pair]struct{}
	partitions map[pairKey]bool
	isolated   map[string]bool
	delays     map[link]time.Duration
	drops      map[link]float64
	stats      Stats
}

// NewNetwork returns an empty network, or the error of cfg.Validate.
func NewNetwork(cfg Config) (*Network, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Network{
		cfg:        cfg.withDefaults(),
		layers:     make(map[string]*Layer),
		conns:      make(map[*pair]struct{}),
		partitions: make(map[pairKey]bool),
		isolated:   make(map[string]bool),
		delays:     make(map[link]time.Duration),
		drops:      make(map[link]float64),
	}, nil
}

// Listen returns a Layer accepting connections dialed to address. The
// address is any non-empty string; it is free again once the layer closes.
func (n *Network) Listen(address string) (*Layer, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: Addr(address), Err: err}
	}
	if address == "" {
		return nil, opErr(errors.New("memtransport: empty address: give each node a distinct name, e.g. \"node1\""))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, opErr(net.ErrClosed)
	}
	if _, ok := n.layers[address]; ok {
		return nil, opErr(ErrAddrInUse)
	}
	l := newLayer(n, address)
	n.layers[address] = l
	return l, nil
}

// Close closes every layer and breaks every connection of the network.
// Later Listen calls fail with net.ErrClosed.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	layers := make([]*Layer, 0, len(n.layers))
	for _, l := range n.layers {
		layers = append(layers, l)
	}
	n.breakLocked(func(*pair) bool { return true }, "network closed")
	n.mu.Unlock()
	for _, l := range layers {
		_ = l.Close()
	}
	return nil
}

// Partition cuts the link between a and b in both directions: existing
// connections between them break and new dials fail with ErrUnreachable
// until Heal or HealAll.
func (n *Network) Partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.partitions[keyOf(a, b)] = true
	n.breakBetweenLocked(a, b, fmt.Sprintf("link %s<->%s partitioned", a, b))
}

// Heal lifts a Partition between a and b. It does not lift Isolate.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.partitions, keyOf(a, b))
}

// Isolate partitions a from every other node, present and future, until
// Rejoin(a) or HealAll.
func (n *Network) Isolate(a string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[a] = true
	n.breakLocked(func(p *pair) bool { return p.dialer == a || p.listener == a }, fmt.Sprintf("node %s isolated", a))
}

// Rejoin lifts Isolate(a). Partitions set with Partition stay.
func (n *Network) Rejoin(a string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.isolated, a)
}

// HealAll lifts every fault: partitions, isolation, delays and drop
// probabilities.
func (n *Network) HealAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.partitions)
	clear(n.isolated)
	clear(n.delays)
	clear(n.drops)
}

// CloseLinks breaks the current connections between a and b once; new dials
// succeed. It returns how many connections it broke.
func (n *Network) CloseLinks(a, b string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.breakBetweenLocked(a, b, fmt.Sprintf("links %s<->%s closed", a, b))
}

// Delay makes bytes that from's end writes towards to readable only d after
// the write, on existing and new connections. Order is kept: lowering the
// delay never lets later bytes overtake earlier ones. d = 0 removes the
// delay; a negative d is an error.
func (n *Network) Delay(from, to string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("memtransport: Delay(%q, %q) is %v: use a duration >= 0 (0 removes the delay)", from, to, d)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if d == 0 {
		delete(n.delays, link{from, to})
	} else {
		n.delays[link{from, to}] = d
	}
	return nil
}

// SetDropProbability makes each Write by from's end towards to break the
// connection with probability p (in [0, 1]) instead of sending: the write
// fails with ErrReset, both ends see ErrReset, and bytes in flight are lost.
// p = 0 removes the fault.
func (n *Network) SetDropProbability(from, to string, p float64) error {
	if !(p >= 0 && p <= 1) { // also rejects NaN
		return fmt.Errorf("memtransport: drop probability for %s->%s is %v: use a value in [0, 1] (0 removes the fault)", from, to, p)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p == 0 {
		delete(n.drops, link{from, to})
	} else {
		n.drops[link{from, to}] = p
	}
	return nil
}

// Stats returns a snapshot of the network's counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.stats
	s.Open = len(n.conns)
	return s
}

func (n *Network) unreachableLocked(a, b string) bool {
	return n.isolated[a] || n.isolated[b] || n.partitions[keyOf(a, b)]
}

func (n *Network) breakBetweenLocked(a, b, reason string) int {
	return n.breakLocked(func(p *pair) bool {
		return (p.dialer == a && p.listener == b) || (p.dialer == b && p.listener == a)
	}, reason)
}

// breakLocked resets every connection matching match, counting each as
// broken by a fault.
func (n *Network) breakLocked(match func(*pair) bool, reason string) int {
	broken := 0
	for p := range n.conns {
		if match(p) && n.resetLocked(p, reason) {
			broken++
		}
	}
	n.stats.Broken += broken
	return broken
}

// reset resets p outside fault injection (a dial given up, a listener
// closed with p in its backlog), so it does not count as broken.
func (n *Network) reset(p *pair, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.resetLocked(p, reason)
}

// resetLocked fails both directions of p with ErrReset and forgets it. It
// reports false if p was already reset or closed.
func (n *Network) resetLocked(p *pair, reason string) bool {
	if _, ok := n.conns[p]; !ok {
		return false
	}
	delete(n.conns, p)
	err := fmt.Errorf("%w: %s", ErrReset, reason)
	p.toListener.reset(err)
	p.toDialer.reset(err)
	return true
}

// beforeWrite returns the delay for bytes c writes now, or the reset error
// if a drop fault fires.
func (n *Network) beforeWrite(c *Conn) (time.Duration, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := link{c.local, c.remote}
	if p, ok := n.drops[l]; ok && n.cfg.Rand.Float64() < p {
		if n.resetLocked(c.pair, fmt.Sprintf("write %s->%s dropped", c.local, c.remote)) {
			n.stats.Dropped++
			n.stats.Broken++
		}
		return 0, fmt.Errorf("%w: write %s->%s dropped", ErrReset, c.local, c.remote)
	}
	return n.delays[l], nil
}

// endClosed forgets p once both of its ends are closed.
func (n *Network) endClosed(p *pair) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p.openEnds--
	if p.openEnds == 0 {
		delete(n.conns, p)
	}
}
