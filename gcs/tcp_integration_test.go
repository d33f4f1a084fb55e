package gcs_test

import (
	"context"
	"testing"
	"time"

	"github.com/repld/repld/gcs"
	"github.com/repld/repld/gcs/tcptransport"
	"github.com/repld/repld/gcs/tcptransport/tlstest"
)

// TestTCPTransport runs a coordinator and two members over real loopback
// TCP, plain and with mutual TLS loaded from PEM files as the commands do:
// joins, multicast both ways, a unicast, and the view change of a leave.
func TestTCPTransport(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testOverTCP(t, func(string) *tcptransport.TLSConfig { return nil }) })
	t.Run("mutual-tls", func(t *testing.T) {
		ca, err := tlstest.NewCA("cluster CA")
		if err != nil {
			t.Fatal(err)
		}
		testOverTCP(t, func(name string) *tcptransport.TLSConfig {
			cert, err := ca.Issue(name)
			if err != nil {
				t.Fatal(err)
			}
			certFile, keyFile, caFile, err := tlstest.WriteFiles(t.TempDir(), cert, ca.PEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := tcptransport.LoadTLSConfig(certFile, keyFile, caFile)
			if err != nil {
				t.Fatal(err)
			}
			return cfg
		})
	})
}

func testOverTCP(t *testing.T, tlsFor func(name string) *tcptransport.TLSConfig) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	node := func(name string) *gcs.Node {
		cfg := tcptransport.DefaultConfig()
		cfg.Address = "127.0.0.1:0"
		cfg.TLS = tlsFor(name)
		layer, err := tcptransport.Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n, err := gcs.NewNode(gcs.DefaultConfig(name), layer)
		if err != nil {
			_ = layer.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	coord, n1, n2 := node("coord"), node("m1"), node("m2")
	contact := coord.Addr().String()

	gc, err := coord.Create(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	g1, err := n1.Join(ctx, "g", contact)
	if err != nil {
		t.Fatal(err)
	}
	awaitView(ctx, t, g1, 2)
	g2, err := n2.Join(ctx, "g", contact)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gcs.Group{gc, g1, g2} {
		awaitView(ctx, t, g, 3)
	}

	// Multicast from the coordinator and from a member.
	if err := gc.Multicast(ctx, []byte("from "), []byte("coord")); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gcs.Group{g1, g2} {
		awaitMessage(ctx, t, g, gc.Self(), "from coord", false)
	}
	if err := g1.Multicast(ctx, []byte("from m1")); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gcs.Group{gc, g2} {
		awaitMessage(ctx, t, g, g1.Self(), "from m1", false)
	}

	// A unicast reaches its target only: the coordinator's next message
	// from m2 is the multicast sent after it.
	if err := g2.Send(ctx, g1.Self(), []byte("just for m1")); err != nil {
		t.Fatal(err)
	}
	if err := g2.Multicast(ctx, []byte("for all")); err != nil {
		t.Fatal(err)
	}
	awaitMessage(ctx, t, g1, g2.Self(), "just for m1", true)
	awaitMessage(ctx, t, g1, g2.Self(), "for all", false)
	awaitMessage(ctx, t, gc, g2.Self(), "for all", false)

	// A leave is a view change everyone else sees.
	left := g2.Self()
	if err := g2.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gcs.Group{gc, g1} {
		if v := awaitView(ctx, t, g, 2); v.Contains(left) {
			t.Fatalf("%s: view %v after %s left", g.Self(), v, left)
		}
	}
}

// awaitView receives until a view of n members arrives.
func awaitView(ctx context.Context, t *testing.T, g *gcs.Group, n int) gcs.View {
	t.Helper()
	for {
		ev, err := g.Receive(ctx)
		if err != nil {
			t.Fatalf("%s: waiting for a view of %d: %v", g.Self(), n, err)
		}
		switch ev.Kind {
		case gcs.EventView:
			if len(ev.View.Members) == n {
				return ev.View
			}
		case gcs.EventNotice:
			t.Fatalf("%s: notice while waiting for a view of %d: %v", g.Self(), n, ev.Err)
		default:
			t.Fatalf("%s: message %q while waiting for a view of %d", g.Self(), ev.Data, n)
		}
	}
}

// awaitMessage receives the next event and checks that it is the expected
// message.
func awaitMessage(ctx context.Context, t *testing.T, g *gcs.Group, from gcs.MemberID, data string, unicast bool) {
	t.Helper()
	ev, err := g.Receive(ctx)
	if err != nil {
		t.Fatalf("%s: waiting for %q: %v", g.Self(), data, err)
	}
	if ev.Kind != gcs.EventMessage || ev.Origin != from || string(ev.Data) != data || ev.Unicast != unicast {
		t.Fatalf("%s: got kind %v from %s %q unicast=%v; want %q from %s unicast=%v",
			g.Self(), ev.Kind, ev.Origin, ev.Data, ev.Unicast, data, from, unicast)
	}
}
