package tcptransport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"
)

// Defaults used by DefaultConfig.
const (
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultKeepAlive        = 15 * time.Second
)

// Config configures a Layer. Start from DefaultConfig and set Address (and
// TLS); Validate rejects zero timeouts rather than guessing.
type Config struct {
	// Address is the host:port to listen on, e.g. "127.0.0.1:0" for a
	// free port (Layer.Addr reports the one chosen).
	Address string
	// TLS, if set, turns on TLS 1.3 for every connection; nil means plain
	// TCP.
	TLS *TLSConfig
	// DialTimeout bounds a whole Dial: the TCP connect and, with TLS, the
	// client handshake.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the server side of a TLS handshake, which
	// runs on an accepted connection's first Read or Write.
	HandshakeTimeout time.Duration
	// KeepAlive is the TCP keep-alive period of every connection; negative
	// disables keep-alives.
	KeepAlive time.Duration
	// NoDelay disables Nagle's algorithm when true (the default): the gcs
	// layer batches its own writes, so small messages should leave at once.
	NoDelay bool
	// ReadBufferSize and WriteBufferSize set the kernel socket buffer
	// sizes in bytes; 0 keeps the operating system's default.
	ReadBufferSize  int
	WriteBufferSize int
}

// DefaultConfig returns a plain-TCP Config with every default set and no
// Address.
func DefaultConfig() Config {
	return Config{
		DialTimeout:      DefaultDialTimeout,
		HandshakeTimeout: DefaultHandshakeTimeout,
		KeepAlive:        DefaultKeepAlive,
		NoDelay:          true,
	}
}

// Validate reports every invalid setting, each with its value and how to fix
// it.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("tcptransport: "+format, args...))
	}
	if c.Address == "" {
		bad("Config.Address is empty: set host:port to listen on, e.g. 127.0.0.1:7100 (port 0 picks a free port)")
	} else if _, _, err := net.SplitHostPort(c.Address); err != nil {
		bad("Config.Address %q is not host:port (%v): write it as e.g. 127.0.0.1:7100 or [::1]:7100", c.Address, err)
	}
	if c.DialTimeout <= 0 {
		bad("Config.DialTimeout is %v: set a positive duration (default %v; start from DefaultConfig())", c.DialTimeout, DefaultDialTimeout)
	}
	if c.HandshakeTimeout <= 0 {
		bad("Config.HandshakeTimeout is %v: set a positive duration (default %v; start from DefaultConfig())", c.HandshakeTimeout, DefaultHandshakeTimeout)
	}
	if c.KeepAlive == 0 {
		bad("Config.KeepAlive is 0: set a positive period (default %v), or a negative one to disable keep-alives", DefaultKeepAlive)
	}
	if c.ReadBufferSize < 0 {
		bad("Config.ReadBufferSize is %d: set a positive byte count, or 0 for the OS default", c.ReadBufferSize)
	}
	if c.WriteBufferSize < 0 {
		bad("Config.WriteBufferSize is %d: set a positive byte count, or 0 for the OS default", c.WriteBufferSize)
	}
	if c.TLS != nil {
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// TLSConfig is the TLS setup of a Layer. Every node both serves and dials,
// so one certificate serves both roles: issue it with the serverAuth and
// clientAuth extended key usages and a SAN for every address peers dial.
type TLSConfig struct {
	// Certificate is this node's certificate chain and private key,
	// presented to clients when serving and to servers when dialing.
	Certificate tls.Certificate
	// RootCAs verifies the certificates of servers this layer dials; nil
	// means the system's roots.
	RootCAs *x509.CertPool
	// ClientCAs verifies the certificates of clients when MutualAuth is
	// on.
	ClientCAs *x509.CertPool
	// MutualAuth makes the serving side require a client certificate
	// signed by ClientCAs.
	MutualAuth bool
	// ServerName, if set, is the name a dialed server's certificate must
	// carry instead of the dialed host.
	ServerName string
}

// Validate reports every invalid TLS setting, with its value and the fix.
func (t *TLSConfig) Validate() error {
	var errs []error
	if len(t.Certificate.Certificate) == 0 || t.Certificate.PrivateKey == nil {
		errs = append(errs, errors.New("tcptransport: TLS.Certificate is empty or has no private key: load the node's certificate and key with LoadTLSConfig(certFile, keyFile, caFile) (flags --tls-cert, --tls-key, --tls-ca) or tls.X509KeyPair"))
	}
	if t.MutualAuth && t.ClientCAs == nil {
		errs = append(errs, errors.New("tcptransport: TLS.MutualAuth is on but TLS.ClientCAs is nil, so no client certificate could be verified: set ClientCAs to the pool of the CA that signs the nodes' certificates (--tls-ca), or turn MutualAuth off to accept clients without certificates"))
	}
	return errors.Join(errs...)
}

// serverConfig is the crypto/tls configuration of the serving side.
func (t *TLSConfig) serverConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.Certificate},
		ClientCAs:    t.ClientCAs,
		ClientAuth:   tls.NoClientCert,
	}
	if t.MutualAuth {
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c
}

// clientConfig is the crypto/tls configuration for dialing host.
func (t *TLSConfig) clientConfig(host string) *tls.Config {
	if t.ServerName != "" {
		host = t.ServerName
	}
	cert := &t.Certificate
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Present our certificate even when the server's list of
		// acceptable CAs does not name its issuer, so a CA mismatch
		// fails as "unknown authority" on the server, not as a missing
		// certificate.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil },
		RootCAs:              t.RootCAs,
		ServerName:           host,
	}
}
