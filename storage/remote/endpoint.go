package remote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/repld/repld/wire"
)

// rolePrimary is how the primary answers the role call.
const rolePrimary = "primary"

// endpoint keeps one connection up to one of its addresses: the primary's
// (the first address whose node says it is the primary) or one replica's.
type endpoint struct {
	c       *Client
	addrs   []string
	primary bool
	everUp  bool // used by run only

	mu      sync.Mutex
	cur     *conn
	lastErr error
	up      chan struct{} // closed when cur is set, replaced when it drops
}

func newEndpoint(c *Client, addrs []string, primary bool) *endpoint {
	return &endpoint{c: c, addrs: addrs, primary: primary, up: make(chan struct{}), lastErr: errors.New("not connected yet")}
}

// conn returns the current connection, or ErrDisconnected at once.
func (e *endpoint) conn() (*conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur != nil {
		return e.cur, nil
	}
	if e.c.isClosed() {
		return nil, errClosed
	}
	return nil, fmt.Errorf("%w from %s: %v", ErrDisconnected, strings.Join(e.addrs, ", "), e.lastErr)
}

// waitUp waits until a connection is up or ctx ends.
func (e *endpoint) waitUp(ctx context.Context) error {
	e.mu.Lock()
	up := e.up
	e.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		_, err := e.conn()
		return errors.Join(ctx.Err(), err)
	}
}

// install makes cn the current connection, unless it has already ended
// (then lost will not be called for it any more); it reports whether it
// did.
func (e *endpoint) install(cn *conn) bool {
	if e.primary {
		// Invalidations may have been missed while disconnected.
		e.c.cache.flush()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	// Checked under e.mu: a connection that ends after this check calls
	// lost, which waits for e.mu, so it never stays installed.
	if cn.failed() {
		return false
	}
	e.cur = cn
	close(e.up)
	return true
}

// lost is called by a connection as soon as it ends, before any call
// fails because of it: from then on calls fail fast and waitUp waits for
// the next one.
func (e *endpoint) lost(cn *conn, err error) {
	e.mu.Lock()
	cur := e.cur == cn
	if cur {
		e.cur = nil
		e.lastErr = fmt.Errorf("connection to %s lost: %v", cn.addr, err)
		e.up = make(chan struct{})
	}
	e.mu.Unlock()
	if cur && e.primary {
		// Invalidations may be missed from now on.
		e.c.cache.flush()
	}
}

// run keeps a connection up until the client closes: it waits for the
// current one (cn, if not nil) to end, then reconnects with backoff.
func (e *endpoint) run(cn *conn) {
	defer e.c.wg.Done()
	ctx := e.c.ctx
	backoff := e.c.cfg.BackoffMin
	for ctx.Err() == nil {
		if cn == nil {
			var err error
			if cn, err = e.connect(ctx); err != nil {
				e.mu.Lock()
				e.lastErr = err
				e.mu.Unlock()
				e.c.log.Debug("cannot connect", zap.Strings("addrs", e.addrs), zap.Error(err), zap.Duration("retry_in", backoff))
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				backoff = min(2*backoff, e.c.cfg.BackoffMax)
				continue
			}
			backoff = e.c.cfg.BackoffMin
			if e.everUp {
				e.c.stats.reconnects.Add(1)
			}
			if e.install(cn) {
				e.c.log.Info("connected", zap.String("addr", cn.addr), zap.Bool("primary", e.primary))
			}
		}
		e.everUp = true
		select {
		case <-cn.done:
		case <-ctx.Done():
			cn.close()
			<-cn.done
		}
		e.c.log.Info("disconnected", zap.String("addr", cn.addr), zap.Error(cn.err))
		cn = nil
	}
	if cn != nil {
		// The client closed before run started.
		cn.close()
		<-cn.done
	}
}

// connect tries each address once and returns the first connection whose
// node has the wanted role.
func (e *endpoint) connect(ctx context.Context) (*conn, error) {
	var errs []error
	for _, addr := range e.addrs {
		var onInvalidate func(*wire.CInvalidate)
		if e.primary {
			onInvalidate = e.c.invalidate
		}
		cn, err := e.c.dial(ctx, addr, onInvalidate, e.lost)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if !e.primary {
			return cn, nil
		}
		rctx, cancel := context.WithTimeout(ctx, e.c.cfg.DialTimeout)
		m, _, err := cn.roundTrip(rctx, func(id uint64) wire.Message { return &wire.CRole{ID: id} })
		cancel()
		var r *wire.CRoleIs
		if err == nil {
			r, err = answer[*wire.CRoleIs](m)
		}
		if err == nil && r.Role != rolePrimary && !e.c.cfg.AnyRole {
			err = fmt.Errorf("the node is a %s, not the primary", r.Role)
		}
		if err == nil {
			cn.role = r.Role
			return cn, nil
		}
		cn.close()
		<-cn.done
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, errors.Join(errs...)
}
