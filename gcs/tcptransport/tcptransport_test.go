package tcptransport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/gcs/tcptransport/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamLayer mirrors gcs.StreamLayer, which this package satisfies without
// importing gcs.
type streamLayer interface {
	net.Listener
	Dial(ctx context.Context, address string) (net.Conn, error)
}

var _ streamLayer = (*tcptransport.Layer)(nil)

func listen(t testing.TB, tlsCfg *tcptransport.TLSConfig) *tcptransport.Layer {
	t.Helper()
	cfg := tcptransport.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.TLS = tlsCfg
	l, err := tcptransport.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// echoServer accepts on l and echoes every connection until the test ends.
// Errors of its connections (such as failed handshakes) go to errs.
func echoServer(t testing.TB, l *tcptransport.Layer) (errs <-chan error) {
	t.Helper()
	errc := make(chan error, 16)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				if _, err := io.Copy(c, c); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
				_ = c.Close()
			})
		}
	})
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return errc
}

func dial(t testing.TB, l *tcptransport.Layer, to net.Addr) net.Conn {
	t.Helper()
	c, err := l.Dial(t.Context(), to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echoed %q, want %q", got, msg)
	}
}

func TestValidate(t *testing.T) {
	good := tcptransport.DefaultConfig()
	good.Address = "127.0.0.1:0"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	ca := newCA(t, "ca")
	node := issue(t, ca, "node")
	for _, tc := range []struct {
		name   string
		change func(*tcptransport.Config)
		want   []string
	}{
		{"zero", func(c *tcptransport.Config) { *c = tcptransport.Config{} },
			[]string{"Config.Address is empty", "Config.DialTimeout is 0s", "Config.HandshakeTimeout is 0s", "Config.KeepAlive is 0", "DefaultConfig()"}},
		{"address", func(c *tcptransport.Config) { c.Address = "localhost" },
			[]string{`Config.Address "localhost" is not host:port`, "127.0.0.1:7100"}},
		{"buffers", func(c *tcptransport.Config) { c.ReadBufferSize, c.WriteBufferSize = -1, -2 },
			[]string{"Config.ReadBufferSize is -1", "Config.WriteBufferSize is -2", "0 for the OS default"}},
		{"tls no cert", func(c *tcptransport.Config) {
			c.TLS = &tcptransport.TLSConfig{ClientCAs: ca.Pool(), MutualAuth: true}
		}, []string{"TLS.Certificate is empty", "LoadTLSConfig", "--tls-cert"}},
		{"mutual without CA", func(c *tcptransport.Config) {
			c.TLS = &tcptransport.TLSConfig{Certificate: node.TLS, MutualAuth: true}
		}, []string{"TLS.MutualAuth is on but TLS.ClientCAs is nil", "--tls-ca", "turn MutualAuth off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, err := tcptransport.Listen(cfg); err == nil {
				t.Error("Listen accepted the config")
			}
		})
	}
}

func TestPlainRoundTrip(t *testing.T) {
	server := listen(t, nil)
	echoServer(t, server)
	client := listen(t, nil)
	c := dial(t, client, server.Addr())
	if _, ok := c.(*net.TCPConn); !ok {
		t.Fatalf("plain Dial returned %T, want *net.TCPConn", c)
	}
	for i := range 20 {
		roundTrip(t, c, strings.Repeat("x", 1+i*1000))
	}
}

func TestNoDelayAndBuffersApplied(t *testing.T) {
	cfg := tcptransport.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.NoDelay = false
	cfg.ReadBufferSize, cfg.WriteBufferSize = 64<<10, 64<<10
	cfg.KeepAlive = -1
	l, err := tcptransport.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, l)
	roundTrip(t, dial(t, l, l.Addr()), "options")
}

// tlsPair returns a server and a client layer with certificates from ca.
func tlsPair(t *testing.T, ca *tlstest.CA) (server, client *tcptransport.Layer) {
	t.Helper()
	mk := func(name string) *tcptransport.TLSConfig {
		return &tcptransport.TLSConfig{Certificate: issue(t, ca, name).TLS, RootCAs: ca.Pool(), ClientCAs: ca.Pool(), MutualAuth: true}
	}
	return listen(t, mk("server")), listen(t, mk("client"))
}

func TestTLSMutualRoundTrip(t *testing.T) {
	ca := newCA(t, "cluster CA")
	server, client := tlsPair(t, ca)
	errs := echoServer(t, server)
	c := dial(t, client, server.Addr())
	roundTrip(t, c, "over mutual TLS")
	state := c.(interface{ ConnectionState() tls.ConnectionState }).ConnectionState()
	if state.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want TLS 1.3", state.Version)
	}
	if len(state.PeerCertificates) == 0 || state.PeerCertificates[0].Subject.CommonName != "server" {
		t.Errorf("peer certificates %v, want the server's", state.PeerCertificates)
	}
	roundTrip(t, c, strings.Repeat("big", 100_000))
	select {
	case err := <-errs:
		t.Fatalf("server: %v", err)
	default:
	}
}

// TestTLSClientWithoutCertificate dials a mutual-TLS server with a plain TLS
// client that has no certificate: the server refuses it.
func TestTLSClientWithoutCertificate(t *testing.T) {
	ca := newCA(t, "cluster CA")
	server, _ := tlsPair(t, ca)
	errs := echoServer(t, server)
	c, err := tls.Dial("tcp", server.Addr().String(), &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Read(make([]byte, 1)); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Fatalf("client read: %v, want the server's certificate-required alert", err)
	}
	err = <-errs
	t.Logf("server: %v", err)
	if !errors.Is(err, tcptransport.ErrHandshake) || !strings.Contains(err.Error(), "on the server side with client") ||
		!strings.Contains(err.Error(), "didn't provide a certificate") {
		t.Fatalf("server error %q, want ErrHandshake on the server side naming the missing certificate", err)
	}
}

// TestTLSClientFromOtherCA dials with a layer whose certificate another CA
// signed: the client trusts the server, but the server refuses the client.
func TestTLSClientFromOtherCA(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "other CA")
	server, _ := tlsPair(t, ca)
	errs := echoServer(t, server)
	client := listen(t, &tcptransport.TLSConfig{
		Certificate: issue(t, other, "intruder").TLS, RootCAs: ca.Pool(), ClientCAs: other.Pool(), MutualAuth: true,
	})
	c := dial(t, client, server.Addr()) // the client side of TLS 1.3 finishes first
	_, err := c.Read(make([]byte, 1))
	t.Logf("client: %v", err)
	if !errors.Is(err, tcptransport.ErrHandshake) || !strings.Contains(err.Error(), "on the client side with server") ||
		!strings.Contains(err.Error(), "refused our certificate") {
		t.Fatalf("client read: %v, want ErrHandshake saying the peer refused our certificate", err)
	}
	err = <-errs
	t.Logf("server: %v", err)
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, tcptransport.ErrHandshake) || !errors.As(err, &unknown) ||
		!strings.Contains(err.Error(), "not signed by a CA in our pool") {
		t.Fatalf("server error %q, want ErrHandshake with an unknown authority", err)
	}
}

// TestTLSServerFromOtherCA: the dialer refuses a server it does not trust,
// and Dial itself fails.
func TestTLSServerFromOtherCA(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "other CA")
	_, client := tlsPair(t, ca)
	impostor := listen(t, &tcptransport.TLSConfig{
		Certificate: issue(t, other, "impostor").TLS, ClientCAs: ca.Pool(), MutualAuth: true,
	})
	echoServer(t, impostor)
	_, err := client.Dial(t.Context(), impostor.Addr().String())
	t.Logf("client: %v", err)
	var unknown x509.UnknownAuthorityError
	if !errors.Is(err, tcptransport.ErrHandshake) || !errors.As(err, &unknown) || !strings.Contains(err.Error(), "on the client side with server") {
		t.Fatalf("Dial: %v, want ErrHandshake on the client side with an unknown authority", err)
	}
}

func TestTLSServerNameMismatch(t *testing.T) {
	ca := newCA(t, "cluster CA")
	server, _ := tlsPair(t, ca)
	echoServer(t, server)
	client := listen(t, &tcptransport.TLSConfig{
		Certificate: issue(t, ca, "client").TLS, RootCAs: ca.Pool(), ClientCAs: ca.Pool(), MutualAuth: true,
		ServerName: "db.example",
	})
	_, err := client.Dial(t.Context(), server.Addr().String())
	t.Logf("client: %v", err)
	var hostname x509.HostnameError
	if !errors.As(err, &hostname) || !strings.Contains(err.Error(), "does not name the dialed host db.example") {
		t.Fatalf("Dial: %v, want a hostname error with a hint", err)
	}
}

// TestSlowHandshakeDoesNotBlockAccept keeps one TCP client silent: the
// server still serves another client meanwhile.
func TestSlowHandshakeDoesNotBlockAccept(t *testing.T) {
	ca := newCA(t, "cluster CA")
	server, client := tlsPair(t, ca)
	echoServer(t, server)
	silent, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	roundTrip(t, dial(t, client, server.Addr()), "not blocked")
}

// TestServerHandshakeTimeout: a client that never speaks TLS fails the
// server's handshake at HandshakeTimeout.
func TestServerHandshakeTimeout(t *testing.T) {
	ca := newCA(t, "cluster CA")
	cfg := tcptransport.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.HandshakeTimeout = 50 * time.Millisecond
	cfg.TLS = &tcptransport.TLSConfig{Certificate: issue(t, ca, "server").TLS, ClientCAs: ca.Pool(), MutualAuth: true}
	server, err := tcptransport.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errs := echoServer(t, server)
	silent, err := net.Dial("tcp", server.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	err = <-errs
	t.Logf("server: %v", err)
	if !errors.Is(err, tcptransport.ErrHandshake) || !strings.Contains(err.Error(), "did not finish in time") {
		t.Fatalf("silent client: %v, want a handshake timeout", err)
	}
}

func TestDialErrors(t *testing.T) {
	l := listen(t, nil)
	// A port nobody listens on: take one and close it.
	tmp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := tmp.Addr().String()
	_ = tmp.Close()
	if _, err := l.Dial(t.Context(), free); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	if _, err := l.Dial(t.Context(), "no-port"); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Fatalf("dial without a port: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Dial(ctx, l.Addr().String()); !errors.Is(err, context.Canceled) {
		t.Fatalf("dial with canceled ctx: %v, want context.Canceled", err)
	}
}

func TestCloseSemantics(t *testing.T) {
	server, client := listen(t, nil), listen(t, nil)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := server.Accept()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	c := dial(t, client, server.Addr())
	s := <-accepted
	defer s.Close()

	// The peer reads what was written, then EOF.
	_, _ = c.Write([]byte("bye"))
	_ = c.Close()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, []byte("bye")) {
		t.Fatalf("ReadAll = %q, %v; want bye and EOF", got, err)
	}

	// Accept blocked in another goroutine returns net.ErrClosed on Close.
	errc := make(chan error, 1)
	go func() {
		_, err := server.Accept()
		errc <- err
	}()
	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	_ = server.Close() // idempotent

	_ = client.Close()
	if _, err := client.Dial(t.Context(), server.Addr().String()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want net.ErrClosed", err)
	}
}

// TestLoadTLSConfig loads PEM files into a working mutual-TLS setup and
// rejects files that could never work, naming the file and the problem.
func TestLoadTLSConfig(t *testing.T) {
	ca, other := newCA(t, "cluster CA"), newCA(t, "other CA")
	certFile, keyFile, caFile := writeFiles(t, issue(t, ca, "node"), ca.PEM)
	cfg, err := tcptransport.LoadTLSConfig(certFile, keyFile, caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.MutualAuth || cfg.RootCAs == nil || cfg.ClientCAs == nil {
		t.Fatalf("LoadTLSConfig = %+v, want mutual auth with both pools", cfg)
	}
	server := listen(t, cfg)
	echoServer(t, server)
	roundTrip(t, dial(t, listen(t, cfg), server.Addr()), "loaded from files")

	node := issue(t, ca, "node")
	for _, tc := range []struct {
		name        string
		cert        tlstest.Issued
		caPEM       []byte
		missingCert bool
		want        []string
	}{
		{name: "missing cert", cert: node, caPEM: ca.PEM, missingCert: true,
			want: []string{"load TLS certificate", "node.crt.missing", "no such file"}},
		{name: "key in CA file", cert: node, caPEM: node.KeyPEM,
			want: []string{"ca.crt", `PEM block 1 is a "EC PRIVATE KEY", want CERTIFICATE`}},
		{name: "empty CA file", cert: node, caPEM: []byte("# nothing\n"),
			want: []string{"ca.crt", "no PEM certificate found"}},
		{name: "other CA", cert: node, caPEM: other.PEM,
			want: []string{"node.crt", `subject "CN=node"`, "does not verify for serverAuth", "not signed by a CA in our pool"}},
		{name: "server-only certificate", cert: issue(t, ca, "srv", x509.ExtKeyUsageServerAuth), caPEM: ca.PEM,
			want: []string{"does not verify for clientAuth", "need both serverAuth and clientAuth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile, keyFile, caFile := writeFiles(t, tc.cert, tc.caPEM)
			if tc.missingCert {
				certFile += ".missing"
			}
			_, err := tcptransport.LoadTLSConfig(certFile, keyFile, caFile)
			if err == nil {
				t.Fatal("LoadTLSConfig succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
