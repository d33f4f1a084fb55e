package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// ErrDisconnected is returned, wrapped, by calls made while the client has
// no connection to the node they need, and by calls in flight when it was
// lost. It is retryable: the client reconnects by itself. A transaction
// whose connection was lost is aborted by the node; begin it again.
var ErrDisconnected = errors.New("remote: disconnected (retryable)")

// errClosed is the error of calls on a closed client.
var errClosed = fmt.Errorf("remote: client closed: %w", storage.ErrClosed)

// Stats counts what a Client did since Open.
type Stats struct {
	// Calls is the number of requests sent that expect an answer.
	Calls uint64
	// CacheHits and CacheMisses count Loads answered from the cache or
	// not.
	CacheHits, CacheMisses uint64
	// Invalidations counts the primary's commit notifications received.
	Invalidations uint64
	// Reconnects counts connections made after a lost one.
	Reconnects uint64
	// ReplicaReads counts reads a replica answered; ReplicaFallbacks the
	// reads that went to the primary because the replica was behind or
	// unreachable.
	ReplicaReads, ReplicaFallbacks uint64
	// LastSeen is the newest TID the client has seen or written; no read
	// returns older state.
	LastSeen storage.TID
}

type counters struct {
	calls, hits, misses, invalidations, reconnects, replicaReads, fallbacks atomic.Uint64
}

// Client is a storage.Storage served by repld nodes over the network. It
// is safe for concurrent use.
type Client struct {
	cfg   Config
	codec *wire.Codec
	log   *zap.Logger
	cache *cache
	stats counters

	primary  *endpoint
	replicas []*endpoint
	next     atomic.Uint64 // round-robin over replicas
	lastSeen atomic.Uint64
	// packFence is the primary's last TID after the client's last pack:
	// replicas not past it may not have applied the pack yet.
	packFence atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

var _ storage.Storage = (*Client)(nil)

// Open connects to the primary (and, in the background, to the replicas)
// and returns the client. It fails if no address of Config.Primary
// answers as the primary before ctx ends or one round of attempts failed.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	codec, err := wire.NewCodec(cfg.Wire)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	c := &Client{cfg: cfg, codec: codec, log: cfg.Logger.Named("remote"), cache: newCache(cfg.CacheObjects, cfg.CacheBytes)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.primary = newEndpoint(c, cfg.Primary, true)
	cn, err := c.primary.connect(ctx)
	if err != nil {
		c.cancel()
		c.wg.Wait()
		return nil, fmt.Errorf("remote: open: no primary found: %w", err)
	}
	c.primary.install(cn)
	c.wg.Add(1)
	go c.primary.run(cn)
	for _, addr := range cfg.Replicas {
		e := newEndpoint(c, []string{addr}, false)
		c.replicas = append(c.replicas, e)
		c.wg.Add(1)
		go e.run(nil)
	}
	return c, nil
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.stats
	return Stats{
		Calls: s.calls.Load(), CacheHits: s.hits.Load(), CacheMisses: s.misses.Load(),
		Invalidations: s.invalidations.Load(), Reconnects: s.reconnects.Load(),
		ReplicaReads: s.replicaReads.Load(), ReplicaFallbacks: s.fallbacks.Load(),
		LastSeen: storage.TID(c.lastSeen.Load()),
	}
}

// WaitConnected waits until the client is connected to the primary and,
// if any, to every replica, or ctx ends.
func (c *Client) WaitConnected(ctx context.Context) error {
	for _, e := range append([]*endpoint{c.primary}, c.replicas...) {
		if err := e.waitUp(ctx); err != nil {
			return fmt.Errorf("remote: wait connected: %w", err)
		}
	}
	return nil
}

// Close closes every connection (the nodes abort the client's open
// transactions) and stops the client's goroutines. Later calls return
// storage.ErrClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *Client) isClosed() bool { return c.closed.Load() }

// seen records that the client has seen state as of tid.
func (c *Client) seen(tid storage.TID) { maxAtomic(&c.lastSeen, uint64(tid)) }

// maxAtomic raises v to at least x.
func maxAtomic(v *atomic.Uint64, x uint64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// invalidate handles the primary's commit notification.
func (c *Client) invalidate(m *wire.CInvalidate) {
	oids := make([]storage.OID, len(m.OIDs)/8)
	for i := range oids {
		oids[i] = storage.OID(binary.BigEndian.Uint64(m.OIDs[8*i:]))
	}
	c.cache.invalidate(oids)
	c.seen(storage.TID(m.TID))
	c.stats.invalidations.Add(1)
}

// primaryCall sends a request to the primary.
func (c *Client) primaryCall(ctx context.Context, build func(id uint64) wire.Message) (wire.Message, []wire.Message, error) {
	if c.isClosed() {
		return nil, nil, errClosed
	}
	cn, err := c.primary.conn()
	if err != nil {
		return nil, nil, err
	}
	return cn.roundTrip(ctx, build)
}

// readCall sends a read to a replica, if any is connected, asking for
// state at least as new as the client has seen; if the replica is behind
// or the connection fails, to the primary.
func (c *Client) readCall(ctx context.Context, build func(id uint64, atLeast storage.TID) wire.Message) (wire.Message, []wire.Message, error) {
	if c.isClosed() {
		return nil, nil, errClosed
	}
	if n := len(c.replicas); n > 0 && (c.packFence.Load() == 0 || c.lastSeen.Load() > c.packFence.Load()) {
		start := c.next.Add(1)
		for i := range n {
			cn, err := c.replicas[(start+uint64(i))%uint64(n)].conn()
			if err != nil {
				continue
			}
			atLeast := storage.TID(c.lastSeen.Load())
			m, items, err := cn.roundTrip(ctx, func(id uint64) wire.Message { return build(id, atLeast) })
			if err == nil || !(errors.Is(err, clientproto.ErrBehind) || errors.Is(err, ErrDisconnected)) {
				if err == nil {
					c.stats.replicaReads.Add(1)
				}
				return m, items, err
			}
			break
		}
		c.stats.fallbacks.Add(1)
	}
	return c.primaryCall(ctx, func(id uint64) wire.Message { return build(id, 0) })
}

// answer returns m as the answer type T, or a protocol error.
func answer[T wire.Message](m wire.Message) (T, error) {
	t, ok := m.(T)
	if !ok {
		return t, fmt.Errorf("remote: the node answered %q, not %T", m.Method(), t)
	}
	return t, nil
}

// opErr wraps err with the operation, unless it is nil.
func opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("remote: %s: %w", op, err)
}

// Load returns oid's current revision, from the cache if it holds it.
func (c *Client) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	if c.isClosed() {
		return nil, 0, errClosed
	}
	if data, serial, ok := c.cache.get(oid); ok {
		c.stats.hits.Add(1)
		return data, serial, nil
	}
	c.stats.misses.Add(1)
	gen := c.cache.generation()
	m, _, err := c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CLoad{ID: id, OID: uint64(oid), AtLeast: uint64(atLeast)}
	})
	var d *wire.CData
	if err == nil {
		d, err = answer[*wire.CData](m)
	}
	if err != nil {
		return nil, 0, opErr("load "+oid.String(), err)
	}
	serial := storage.TID(d.Serial)
	c.seen(serial)
	c.cache.put(gen, oid, serial, d.Data)
	return d.Data, serial, nil
}

// LoadBefore returns the revision of oid current just before before.
func (c *Client) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	m, _, err := c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CLoadBefore{ID: id, OID: uint64(oid), Before: uint64(before), AtLeast: uint64(atLeast)}
	})
	var d *wire.CData
	if err == nil {
		d, err = answer[*wire.CData](m)
	}
	if err != nil {
		return nil, 0, 0, opErr(fmt.Sprintf("load %s before %s", oid, before), err)
	}
	return d.Data, storage.TID(d.Serial), storage.TID(d.End), nil
}

// History returns up to n revisions of oid, newest first.
func (c *Client) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	m, items, err := c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CHistory{ID: id, OID: uint64(oid), N: uint64(max(n, 0)), AtLeast: uint64(atLeast)}
	})
	if err == nil {
		_, err = answer[*wire.COK](m)
	}
	revs := make([]storage.Revision, 0, len(items))
	for _, it := range items {
		if err != nil {
			break
		}
		var r *wire.CRevision
		if r, err = answer[*wire.CRevision](it); err == nil {
			revs = append(revs, storage.Revision{TID: storage.TID(r.TID), Data: r.Data})
		}
	}
	if err != nil {
		return nil, opErr("history of "+oid.String(), err)
	}
	return revs, nil
}

// LastTransaction returns the last committed TID, never older than one the
// client has seen.
func (c *Client) LastTransaction(ctx context.Context) (storage.TID, error) {
	m, _, err := c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CLast{ID: id, AtLeast: uint64(atLeast)}
	})
	var n *wire.CNum
	if err == nil {
		n, err = answer[*wire.CNum](m)
	}
	if err != nil {
		return 0, opErr("last transaction", err)
	}
	c.seen(storage.TID(n.Value))
	return storage.TID(n.Value), nil
}

// Chain returns the chain checksum at tid.
func (c *Client) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	m, _, err := c.readCall(ctx, func(id uint64, atLeast storage.TID) wire.Message {
		return &wire.CChain{ID: id, TID: uint64(tid), AtLeast: uint64(atLeast)}
	})
	var cm *wire.CCommit
	if err == nil {
		cm, err = answer[*wire.CCommit](m)
	}
	if err != nil {
		return storage.Checksum{}, opErr("chain at "+tid.String(), err)
	}
	return storage.Checksum(cm.Chain), nil
}

// NewOID asks the primary for a new OID.
func (c *Client) NewOID(ctx context.Context) (storage.OID, error) {
	m, _, err := c.primaryCall(ctx, func(id uint64) wire.Message { return &wire.CNewOID{ID: id} })
	var n *wire.CNum
	if err == nil {
		n, err = answer[*wire.CNum](m)
	}
	if err != nil {
		return 0, opErr("new OID", err)
	}
	return storage.OID(n.Value), nil
}

// Pack packs the primary, which replicates the pack.
func (c *Client) Pack(ctx context.Context, before storage.TID) error {
	m, _, err := c.primaryCall(ctx, func(id uint64) wire.Message { return &wire.CPack{ID: id, Before: uint64(before)} })
	var n *wire.CNum
	if err == nil {
		n, err = answer[*wire.CNum](m)
	}
	if err != nil {
		return opErr("pack before "+before.String(), err)
	}
	// A replica has applied the pack once it is past the primary's last
	// TID at the time; until the client needs state that new, reads go to
	// the primary.
	maxAtomic(&c.packFence, n.Value)
	return nil
}
