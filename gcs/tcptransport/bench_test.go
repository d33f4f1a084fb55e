package tcptransport_test

import (
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/repld/repld/gcs/tcptransport"
)

// BenchmarkThroughput streams writes of one size through one connection to
// a reader that discards them. "raw" is a bare net.Dial/net.Listen pair
// measured in the same run, the baseline for "plain" (the layer without
// TLS) and "tls" (the layer with mutual TLS): compare their MB/s as ratios.
func BenchmarkThroughput(b *testing.B) {
	ca := newCA(b, "bench CA")
	tlsCfg := func(name string) *tcptransport.TLSConfig {
		return &tcptransport.TLSConfig{Certificate: issue(b, ca, name).TLS, RootCAs: ca.Pool(), ClientCAs: ca.Pool(), MutualAuth: true}
	}
	for _, size := range []int{100, 100 << 10} {
		for _, kind := range []string{"raw", "plain", "tls"} {
			b.Run(fmt.Sprintf("%s/%s", kind, sizeName(size)), func(b *testing.B) {
				var ln net.Listener
				var dial func() (net.Conn, error)
				switch kind {
				case "raw":
					l, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					ln = l
					dial = func() (net.Conn, error) { return net.Dial("tcp", l.Addr().String()) }
				default:
					var server, client *tcptransport.Layer
					if kind == "tls" {
						server, client = listen(b, tlsCfg("server")), listen(b, tlsCfg("client"))
					} else {
						server, client = listen(b, nil), listen(b, nil)
					}
					ln = server
					dial = func() (net.Conn, error) { return client.Dial(b.Context(), server.Addr().String()) }
				}
				defer ln.Close()
				done := make(chan error, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						done <- err
						return
					}
					_, err = io.Copy(io.Discard, c)
					_ = c.Close()
					done <- err
				}()
				c, err := dial()
				if err != nil {
					b.Fatal(err)
				}
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				_ = c.Close()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
