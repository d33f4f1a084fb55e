package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/internal/node"
	"github.com/repld/repld/storage"
)

// clientPort is a node's --client port: storage clients (storage/remote,
// repld bench) connect there. It serves whatever role the node has now,
// read-write as the primary, read-only as a replica, and announces every
// commit of the node's store to its connections.
type clientPort struct {
	addr string
	hub  *clientserver.Hub
}

func (c *clientPort) addFlag(fs *pflag.FlagSet) {
	c.hub = clientserver.NewHub()
	fs.StringVar(&c.addr, "client", "", "address host:port to serve storage clients on (read-write on the primary, read-only on a replica; with --tls-* it is mutual TLS); empty: no client port")
}

func (c *clientPort) validate() error {
	if c.addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--client %q is not host:port (%v); use e.g. 127.0.0.1:7002 (or set %s)", c.addr, err, envName("client"))
	}
	return nil
}

// announce wraps a store the node opened so that every commit to it (by
// clients, by the primary, or by a replica's apply loop) reaches the
// client port's connections.
func (c *clientPort) announce(s storage.Storage, err error) (storage.Storage, error) {
	if err != nil || c.addr == "" {
		return s, err
	}
	return clientserver.Notifying(s, c.hub), nil
}

// start serves the client port of n (nothing without --client) and
// returns stop extended to close it first, so no client call runs against
// a closing node.
func (c *clientPort) start(o *nodeOptions, n *node.Node, stop func() error, log *zap.Logger) (func() error, error) {
	if c.addr == "" {
		return stop, nil
	}
	var tlsCfg *tls.Config
	if t, err := o.tlsConfig(); err != nil {
		return stop, err
	} else if t != nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{t.Certificate},
			ClientCAs: t.ClientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	}
	srv, err := clientserver.Listen(c.addr, clientserver.Config{
		Store: nodeStore{n}, Hub: c.hub, Announced: true, Role: func() string { return string(n.Role()) },
		TLS: tlsCfg, Logger: log,
	})
	if err != nil {
		return stop, fmt.Errorf("--client: %w", err)
	}
	log.Info("client port serving", zap.String("client", srv.Addr().String()), zap.Bool("tls", tlsCfg != nil))
	return func() error {
		return errors.Join(closeAll(log, namedCloser{"client port", srv.Close}), stop())
	}, nil
}

// nodeStore is the store of the node's current role: the primary, or the
// replica's read-only view. The node owns it: Close does nothing.
type nodeStore struct{ n *node.Node }

func (s nodeStore) cur() (storage.Storage, error) {
	if st := s.n.Store(); st != nil {
		return st, nil
	}
	return nil, fmt.Errorf("repld: node has no role: %w", storage.ErrClosed)
}

func (s nodeStore) Load(ctx context.Context, oid storage.OID) ([]byte, storage.TID, error) {
	st, err := s.cur()
	if err != nil {
		return nil, 0, err
	}
	return st.Load(ctx, oid)
}

func (s nodeStore) LoadBefore(ctx context.Context, oid storage.OID, before storage.TID) ([]byte, storage.TID, storage.TID, error) {
	st, err := s.cur()
	if err != nil {
		return nil, 0, 0, err
	}
	return st.LoadBefore(ctx, oid, before)
}

func (s nodeStore) History(ctx context.Context, oid storage.OID, n int) ([]storage.Revision, error) {
	st, err := s.cur()
	if err != nil {
		return nil, err
	}
	return st.History(ctx, oid, n)
}

func (s nodeStore) LastTransaction(ctx context.Context) (storage.TID, error) {
	st, err := s.cur()
	if err != nil {
		return 0, err
	}
	return st.LastTransaction(ctx)
}

func (s nodeStore) Chain(ctx context.Context, tid storage.TID) (storage.Checksum, error) {
	st, err := s.cur()
	if err != nil {
		return storage.Checksum{}, err
	}
	return st.Chain(ctx, tid)
}

func (s nodeStore) NewOID(ctx context.Context) (storage.OID, error) {
	st, err := s.cur()
	if err != nil {
		return 0, err
	}
	return st.NewOID(ctx)
}

func (s nodeStore) Iterator(ctx context.Context, from, to storage.TID) (storage.TransactionIterator, error) {
	st, err := s.cur()
	if err != nil {
		return nil, err
	}
	return st.Iterator(ctx, from, to)
}

func (s nodeStore) Pack(ctx context.Context, before storage.TID) error {
	st, err := s.cur()
	if err != nil {
		return err
	}
	return st.Pack(ctx, before)
}

func (s nodeStore) Begin(ctx context.Context, meta storage.TxnMeta) (storage.Txn, error) {
	st, err := s.cur()
	if err != nil {
		return nil, err
	}
	return st.Begin(ctx, meta)
}

// Close does nothing: the node closes its store.
func (nodeStore) Close() error { return nil }
