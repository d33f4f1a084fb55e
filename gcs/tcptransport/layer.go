package tcptransport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Layer is a TCP listener plus a dialer with the same options, satisfying
// gcs.StreamLayer. Its methods are safe for concurrent use.
type Layer struct {
	cfg       Config
	ln        net.Listener
	dialer    net.Dialer
	serverTLS *tls.Config // nil without TLS

	closing   context.Context // canceled by Close, aborting Dial calls
	close     context.CancelFunc
	closeOnce sync.Once
	closeErr  error
}

var _ net.Listener = (*Layer)(nil)

// Listen validates cfg and starts listening on cfg.Address.
func Listen(cfg Config) (*Layer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: cfg.KeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("tcptransport: listen on %s (Config.Address): %w", cfg.Address, err)
	}
	l := &Layer{
		cfg:    cfg,
		ln:     ln,
		dialer: net.Dialer{KeepAlive: cfg.KeepAlive},
	}
	if cfg.TLS != nil {
		l.serverTLS = cfg.TLS.serverConfig()
	}
	l.closing, l.close = context.WithCancel(context.Background())
	return l, nil
}

// Addr returns the listening address, with the actual port when
// Config.Address asked for port 0.
func (l *Layer) Addr() net.Addr { return l.ln.Addr() }

// Accept waits for the next connection. With TLS it returns before the
// handshake, which runs on the connection's first Read or Write (see the
// package documentation). After Close it returns an error wrapping
// net.ErrClosed.
func (l *Layer) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if err := l.tune(c); err != nil {
			// The connection died between accept and setsockopt: it is
			// this peer's problem, not the listener's, so keep accepting.
			_ = c.Close()
			continue
		}
		if l.serverTLS == nil {
			return c, nil
		}
		return &tlsConn{Conn: tls.Server(c, l.serverTLS), side: "server", timeout: l.cfg.HandshakeTimeout}, nil
	}
}

// Close stops listening and aborts Dial calls in progress; later Accept and
// Dial calls fail with net.ErrClosed. Established connections stay open.
func (l *Layer) Close() error {
	l.closeOnce.Do(func() {
		l.close()
		l.closeErr = l.ln.Close()
	})
	return l.closeErr
}

// Dial connects to the layer listening at address (host:port). It honours
// ctx and Config.DialTimeout, which bounds the connect and, with TLS, the
// client handshake; a TLS Dial returns only after the server's certificate
// has been verified.
func (l *Layer) Dial(ctx context.Context, address string) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		if l.closing.Err() != nil {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: stringAddr(address), Err: err}
	}
	if l.closing.Err() != nil {
		return fail(net.ErrClosed)
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.DialTimeout)
	defer cancel()
	defer context.AfterFunc(l.closing, cancel)()

	c, err := l.dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			err = opErr.Err // avoid "dial tcp ...: dial tcp ..."
		}
		return fail(err)
	}
	if err := l.tune(c); err != nil {
		_ = c.Close()
		return fail(err)
	}
	if l.cfg.TLS == nil {
		return c, nil
	}
	tc := tls.Client(c, l.cfg.TLS.clientConfig(host))
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		if l.closing.Err() != nil {
			return fail(net.ErrClosed)
		}
		return nil, handshakeError("client", address, err)
	}
	conn := &tlsConn{Conn: tc, side: "client", timeout: l.cfg.HandshakeTimeout}
	conn.done.Store(true)
	return conn, nil
}

// tune applies the configured TCP options to a new connection.
func (l *Layer) tune(c net.Conn) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	if err := tc.SetNoDelay(l.cfg.NoDelay); err != nil {
		return fmt.Errorf("tcptransport: set NoDelay: %w", err)
	}
	if n := l.cfg.ReadBufferSize; n > 0 {
		if err := tc.SetReadBuffer(n); err != nil {
			return fmt.Errorf("tcptransport: set ReadBufferSize %d: %w", n, err)
		}
	}
	if n := l.cfg.WriteBufferSize; n > 0 {
		if err := tc.SetWriteBuffer(n); err != nil {
			return fmt.Errorf("tcptransport: set WriteBufferSize %d: %w", n, err)
		}
	}
	return nil
}

// stringAddr is a dialed address that was never resolved.
type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
