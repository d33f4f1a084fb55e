package clientserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/internal/clientproto"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/wire"
)

// Server serves storage clients on a listener.
type Server struct {
	cfg   Config
	store storage.Storage // cfg.Store, publishing the server's commits
	hub   *Hub
	codec *wire.Codec
	log   *zap.Logger
	l     net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

// Listen listens on addr (host:port; TLS if cfg.TLS is set) and serves
// clients until Close.
func Listen(addr string, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("clientserver: listen on %s: %w", addr, err)
	}
	if cfg.TLS != nil {
		l = tls.NewListener(l, cfg.TLS)
	}
	s, err := Serve(l, cfg)
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	return s, nil
}

// Serve serves clients on l until Close, which closes l. cfg.TLS is not
// used: l is served as it is.
func Serve(l net.Listener, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	codec, err := wire.NewCodec(cfg.Wire)
	if err != nil {
		return nil, fmt.Errorf("clientserver: %w", err)
	}
	hub := cfg.Hub
	if hub == nil {
		hub = NewHub()
	}
	ctx, cancel := context.WithCancel(context.Background())
	last, err := cfg.Store.LastTransaction(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("clientserver: read the last transaction: %w", err)
	}
	hub.Advance(last)
	store := cfg.Store
	if !cfg.Announced {
		store = Notifying(store, hub)
	}
	s := &Server{
		cfg: cfg, store: store, hub: hub, codec: codec, log: cfg.Logger.Named("clientserver"), l: l,
		ctx: ctx, cancel: cancel, conns: make(map[*conn]struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Hub returns the server's Hub.
func (s *Server) Hub() *Hub { return s.hub }

// Storage returns the server's store as the server uses it: commits made
// through it are announced to the clients. An application embedding a
// primary commits through it.
func (s *Server) Storage() storage.Storage { return s.store }

// Close stops accepting, drops every connection (aborting their open
// transactions) and waits for the server's goroutines. It does not close
// the store.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.cancel()
	err := s.l.Close()
	s.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.l.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("accept failed; the client port stops serving", zap.Error(err))
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		c := s.newConn(nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// role answers the role call.
func (s *Server) role() string {
	switch {
	case s.cfg.Role != nil:
		return s.cfg.Role()
	case s.cfg.ReadOnly:
		return RoleReplica
	}
	return RolePrimary
}

// conn is one client connection.
type conn struct {
	s      *Server
	nc     net.Conn
	w      *clientproto.Writer
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	// txnCtx is ctx carrying the connection as its transactions' origin;
	// abortCtx is txnCtx without its cancellation, to abort with once the
	// connection has ended.
	txnCtx, abortCtx context.Context
	slots            chan struct{}
	wg               sync.WaitGroup

	// idle holds the way to a transaction goroutine waiting for work.
	idle chan chan start

	mu   sync.Mutex
	txns map[uint64]*worker
}

func (s *Server) newConn(nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &conn{
		s: s, nc: nc, w: clientproto.NewWriter(nc, s.codec, s.cfg.MaxQueued, s.cfg.WriteTimeout),
		log: s.log.With(zap.Stringer("client", nc.RemoteAddr())), ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, s.cfg.MaxInFlight), txns: make(map[uint64]*worker),
		idle: make(chan chan start, idleWorkers),
	}
	c.txnCtx = context.WithValue(ctx, originKey{}, c)
	c.abortCtx = context.WithoutCancel(c.txnCtx)
	return c
}

// serve reads requests until the connection ends, then aborts the
// connection's transactions.
func (c *conn) serve() {
	unsubscribe := c.s.hub.subscribe(c, func(n *notice, own bool) {
		f, err := n.invalidation(c.s.codec)
		switch {
		case err != nil:
		case own:
			// The commit's answer follows at once and writes both.
			err = c.w.HoldFrame(f)
		default:
			err = c.w.SendFrame(f)
		}
		if err != nil {
			c.log.Warn("dropping a client that does not keep up", zap.Error(err))
			_ = c.nc.Close()
		}
	})
	defer func() {
		unsubscribe()
		c.cancel()
		_ = c.nc.Close()
		c.mu.Lock()
		for _, w := range c.txns {
			close(w.ops)
		}
		c.txns = nil
		c.mu.Unlock()
		c.wg.Wait()
		c.w.Close()
	}()
	r := bufio.NewReaderSize(c.nc, defaultReadBuffer)
	max := c.s.codec.Config().MaxMessageLen
	for {
		b, err := clientproto.ReadFrame(r, max)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				c.log.Info("client connection ended", zap.Error(err))
			}
			return
		}
		m, err := c.s.codec.Unmarshal(b)
		if err == nil {
			err = c.dispatch(m)
		}
		if err != nil {
			c.log.Warn("dropping a client that broke the protocol", zap.Error(err))
			// Say why before hanging up, waiting a little for a client
			// that does not read.
			_ = c.w.Send(&wire.CError{Code: wire.ClientErrProtocol, Text: err.Error()})
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			c.w.Close()
			return
		}
	}
}

// send sends an answer, waiting for room in the send queue; failing to
// send it ends the connection.
func (c *conn) send(m wire.Message) {
	if err := c.w.SendWait(c.ctx, m); err != nil {
		if !errors.Is(err, clientproto.ErrWriterClosed) {
			c.log.Warn("cannot answer a client; dropping it", zap.Error(err))
		}
		_ = c.nc.Close()
	}
}

// sendCommitted answers a finished transaction. While the connection has
// other transactions open, their answers are likely to follow soon, so
// the answer is left to the writer's goroutine, which writes those that
// are ready by then together; otherwise it is written at once.
func (c *conn) sendCommitted(m wire.Message) {
	c.mu.Lock()
	others := len(c.txns) > 0
	c.mu.Unlock()
	if !others {
		c.send(m)
		return
	}
	if err := c.w.SendSoon(c.ctx, m); err != nil {
		if !errors.Is(err, clientproto.ErrWriterClosed) {
			c.log.Warn("cannot answer a client; dropping it", zap.Error(err))
		}
		_ = c.nc.Close()
	}
}

// sendErr answers request id with err. Requests with id 0 want no answer
// (a client's abort that nobody waits for).
func (c *conn) sendErr(id uint64, err error) {
	if id != 0 {
		c.send(clientproto.ErrorMessage(id, err))
	}
}

// dispatch starts serving one request. An error is a protocol violation.
func (c *conn) dispatch(m wire.Message) error {
	switch m := m.(type) {
	case *wire.CBegin:
		return c.begin(m)
	case *wire.CStore:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CVote:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CFinish:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CFinishAt:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CVoteFinish:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CAbort:
		return c.toTxn(m.Txn, m.ID, m)
	case *wire.CLoad, *wire.CLoadBefore, *wire.CHistory, *wire.CLast, *wire.CChain, *wire.CIterate,
		*wire.CNewOID, *wire.CPack, *wire.CRole:
		select {
		case c.slots <- struct{}{}:
		case <-c.ctx.Done():
			return nil
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer func() { <-c.slots }()
			c.read(m)
		}()
		return nil
	}
	return fmt.Errorf("unexpected message %q from a client", m.Method())
}

// atLeast waits until the node committed tid, up to MaxWait.
func (c *conn) atLeast(tid uint64) error {
	if tid == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.cfg.MaxWait)
	defer cancel()
	if !c.s.hub.Wait(ctx, storage.TID(tid)) {
		return fmt.Errorf("%w: waited %v for %s, last is %s", clientproto.ErrBehind, c.s.cfg.MaxWait, storage.TID(tid), c.s.hub.Last())
	}
	return nil
}

// read serves a request that is not part of a transaction.
func (c *conn) read(m wire.Message) {
	id, atLeast := requestOf(m)
	err := c.atLeast(atLeast)
	if err == nil {
		err = c.serveRead(m)
	}
	if err != nil {
		c.sendErr(id, err)
	}
}

// requestOf returns a read's request id and the TID it needs.
func requestOf(m wire.Message) (id, atLeast uint64) {
	switch m := m.(type) {
	case *wire.CLoad:
		return m.ID, m.AtLeast
	case *wire.CLoadBefore:
		return m.ID, m.AtLeast
	case *wire.CHistory:
		return m.ID, m.AtLeast
	case *wire.CLast:
		return m.ID, m.AtLeast
	case *wire.CChain:
		return m.ID, m.AtLeast
	case *wire.CIterate:
		return m.ID, m.AtLeast
	case *wire.CNewOID:
		return m.ID, 0
	case *wire.CPack:
		return m.ID, 0
	case *wire.CRole:
		return m.ID, 0
	}
	return 0, 0
}

// serveRead answers a read, or returns its error.
func (c *conn) serveRead(m wire.Message) error {
	ctx, store := c.ctx, c.s.store
	switch m := m.(type) {
	case *wire.CLoad:
		data, serial, err := store.Load(ctx, storage.OID(m.OID))
		if err != nil {
			return err
		}
		c.send(&wire.CData{ID: m.ID, Serial: uint64(serial), Data: data})
	case *wire.CLoadBefore:
		data, start, end, err := store.LoadBefore(ctx, storage.OID(m.OID), storage.TID(m.Before))
		if err != nil {
			return err
		}
		c.send(&wire.CData{ID: m.ID, Serial: uint64(start), End: uint64(end), Data: data})
	case *wire.CHistory:
		revs, err := store.History(ctx, storage.OID(m.OID), int(min(m.N, math.MaxInt32)))
		if err != nil {
			return err
		}
		for _, r := range revs {
			c.send(&wire.CRevision{ID: m.ID, TID: uint64(r.TID), Data: r.Data})
		}
		c.send(&wire.COK{ID: m.ID})
	case *wire.CLast:
		tid, err := store.LastTransaction(ctx)
		if err != nil {
			return err
		}
		c.send(&wire.CNum{ID: m.ID, Value: uint64(tid)})
	case *wire.CChain:
		chain, err := store.Chain(ctx, storage.TID(m.TID))
		if err != nil {
			return err
		}
		c.send(&wire.CCommit{ID: m.ID, TID: m.TID, Chain: wire.Chain(chain)})
	case *wire.CIterate:
		return c.iterate(m)
	case *wire.CNewOID:
		oid, err := store.NewOID(ctx)
		if err != nil {
			return err
		}
		c.send(&wire.CNum{ID: m.ID, Value: uint64(oid)})
	case *wire.CPack:
		if err := store.Pack(ctx, storage.TID(m.Before)); err != nil {
			return err
		}
		last, err := store.LastTransaction(ctx)
		if err != nil {
			return err
		}
		c.send(&wire.CNum{ID: m.ID, Value: uint64(last)})
	case *wire.CRole:
		c.send(&wire.CRoleIs{ID: m.ID, Role: c.s.role(), LastTID: uint64(c.s.hub.Last())})
	}
	return nil
}

// iterate sends one page of transactions, then where the next page starts.
func (c *conn) iterate(m *wire.CIterate) error {
	it, err := c.s.store.Iterator(c.ctx, storage.TID(m.From), storage.TID(m.To))
	if err != nil {
		return err
	}
	defer it.Close()
	var next uint64
	for n, size := 0, 0; n < c.s.cfg.PageTxns && size < c.s.cfg.PageBytes; n++ {
		txn, err := it.Next(c.ctx)
		if errors.Is(err, io.EOF) {
			next = 0
			break
		}
		if err != nil {
			return err
		}
		c.send(&wire.CTxn{ID: m.ID, TID: uint64(txn.TID), Chain: wire.Chain(txn.Chain),
			User: txn.Meta.User, Description: txn.Meta.Description, Extension: txn.Meta.Extension})
		for _, r := range txn.Records {
			c.send(&wire.CRecord{ID: m.ID, OID: uint64(r.OID), Data: r.Data})
			size += len(r.Data)
		}
		next = uint64(txn.TID) + 1 // 0 after the largest TID: nothing can follow it
		if m.To != 0 && uint64(txn.TID) >= m.To {
			next = 0
			break
		}
	}
	c.send(&wire.CNum{ID: m.ID, Value: next})
	return nil
}
