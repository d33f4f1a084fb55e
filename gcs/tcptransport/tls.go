package tcptransport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// ErrHandshake is wrapped by every TLS handshake failure, so callers can tell
// a refused peer (retrying will not help until certificates change) from a
// network error.
var ErrHandshake = errors.New("tcptransport: TLS handshake failed")

// LoadTLSConfig reads a node's PEM certificate chain and private key and the
// PEM bundle of the CA that signs every node's certificate, and returns a
// mutual-authentication TLSConfig trusting that bundle for both roles. It
// checks the certificate against the bundle for both server and client use
// now, so a wrong file fails at startup with a precise message instead of
// at every peer's handshake.
func LoadTLSConfig(certFile, keyFile, caFile string) (*TLSConfig, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tcptransport: load TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tcptransport: read TLS CA file: %w", err)
	}
	pool, err := ParseCertPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("tcptransport: CA file %s: %w", caFile, err)
	}
	leaf := cert.Leaf // parsed by LoadX509KeyPair since Go 1.23
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tcptransport: TLS certificate %s: %w", certFile, err)
		}
	}
	inter := x509.NewCertPool()
	for i, der := range cert.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("tcptransport: TLS certificate %s: chain certificate %d: %w", certFile, i+2, err)
		}
		inter.AddCert(c)
	}
	for _, use := range []struct {
		usage x509.ExtKeyUsage
		name  string
	}{{x509.ExtKeyUsageServerAuth, "serverAuth"}, {x509.ExtKeyUsageClientAuth, "clientAuth"}} {
		opts := x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{use.usage}}
		if _, err := leaf.Verify(opts); err != nil {
			return nil, fmt.Errorf("tcptransport: TLS certificate %s (subject %q) does not verify for %s against CA file %s: %w%s",
				certFile, leaf.Subject, use.name, caFile, err, hint(err))
		}
	}
	return &TLSConfig{Certificate: cert, RootCAs: pool, ClientCAs: pool, MutualAuth: true}, nil
}

// ParseCertPool parses a PEM bundle of CA certificates. Unlike
// x509.CertPool.AppendCertsFromPEM it fails on any PEM block that is not a
// valid certificate and on a bundle without certificates, instead of
// skipping them silently. Text between blocks (comments in CA bundles) is
// ignored.
func ParseCertPool(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := pemData; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, want CERTIFICATE (is a key or CSR in the CA file?)", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return nil, errors.New("no PEM certificate found: want one or more -----BEGIN CERTIFICATE----- blocks")
	}
	return pool, nil
}

// hint explains the usual certificate problems in operator terms.
func hint(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		opErr    *net.OpError
	)
	switch {
	case errors.As(err, &unknown) && unknown.Cert != nil:
		return fmt.Sprintf(" (the certificate of %q, issued by %q, is not signed by a CA in our pool: every node needs a certificate from the CA given with --tls-ca)",
			unknown.Cert.Subject, unknown.Cert.Issuer)
	case errors.As(err, &unknown):
		return " (the certificate is not signed by a CA in our pool: every node needs a certificate from the CA given with --tls-ca)"
	case errors.As(err, &hostname):
		return fmt.Sprintf(" (the server's certificate does not name the dialed host %s: reissue it with that DNS or IP SAN, or set TLSConfig.ServerName)", hostname.Host)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return " (a certificate is expired or not yet valid: check its validity period and the clocks)"
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return " (the certificate lacks an extended key usage: node certificates need both serverAuth and clientAuth)"
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		return " (the peer refused our certificate or TLS settings: see the peer's log for its reason)"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return " (the handshake did not finish in time: is the peer speaking TLS?)"
	}
	return ""
}

// handshakeError wraps a handshake failure with ErrHandshake, our side
// ("server" or "client"), the peer and a hint.
func handshakeError(side, peer string, err error) error {
	peerRole := "server"
	if side == "server" {
		peerRole = "client"
	}
	return fmt.Errorf("%w on the %s side with %s %s: %w%s", ErrHandshake, side, peerRole, peer, err, hint(err))
}

// tlsConn is a TLS connection whose handshake runs, bounded by timeout, on
// the first Read or Write, and whose errors name the side and the peer. The
// embedded *tls.Conn gives access to ConnectionState and HandshakeContext.
type tlsConn struct {
	*tls.Conn
	side    string // "server" or "client"
	timeout time.Duration
	done    atomic.Bool // handshake completed
	gotData atomic.Bool // Read has returned data
}

func (c *tlsConn) handshake() error {
	if c.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.Conn.HandshakeContext(ctx); err != nil {
		return handshakeError(c.side, c.RemoteAddr().String(), err)
	}
	c.done.Store(true)
	return nil
}

// Read runs the handshake if needed, then reads. A TLS alert from the peer
// before any data, such as a client certificate the server rejected after
// the client's side of a TLS 1.3 handshake finished, is reported as
// ErrHandshake.
func (c *tlsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.gotData.Store(true)
	}
	var opErr *net.OpError
	if err != nil && !c.gotData.Load() && errors.As(err, &opErr) && opErr.Op == "remote error" {
		err = handshakeError(c.side, c.RemoteAddr().String(), err)
	}
	return n, err
}

// Write runs the handshake if needed, then writes.
func (c *tlsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
