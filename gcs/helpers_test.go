package gcs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/repld/repld/gcs/memtransport"
)

// testConfig is a configuration with short timeouts for tests.
func testConfig(name string, seed uint64) Config {
	cfg := DefaultConfig(name)
	cfg.HeartbeatInterval = 20 * time.Millisecond
	cfg.FailureTimeout = 200 * time.Millisecond
	cfg.SlowMemberTimeout = 300 * time.Millisecond
	cfg.ReconnectMin = 5 * time.Millisecond
	cfg.ReconnectMax = 50 * time.Millisecond
	cfg.Rand = rand.New(rand.NewPCG(seed, 1))
	if os.Getenv("GCS_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

// cluster is an in-memory network of nodes for tests.
type cluster struct {
	t     testing.TB
	net   *memtransport.Network
	nodes map[string]*Node
}

func newCluster(t testing.TB, seed uint64) *cluster {
	t.Helper()
	network, err := memtransport.NewNetwork(memtransport.Config{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, net: network, nodes: map[string]*Node{}}
	t.Cleanup(c.close)
	return c
}

// close closes every node and the network; tests inside a synctest bubble
// call it before the bubble ends, others leave it to the cleanup.
func (c *cluster) close() {
	for _, n := range c.nodes {
		n.Close()
	}
	c.net.Close()
}

func (c *cluster) node(name string, mod func(*Config)) *Node {
	c.t.Helper()
	layer, err := c.net.Listen(name)
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := testConfig(name, uint64(len(c.nodes)+1))
	if mod != nil {
		mod(&cfg)
	}
	n, err := NewNode(cfg, layer)
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[name] = n
	return n
}

// next returns the next event, failing the test after a generous bound.
func next(t testing.TB, g *Group) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ev, err := g.Receive(ctx)
	if err != nil {
		t.Fatalf("%s: receive: %v", g.Self(), err)
	}
	return ev
}

// waitView receives until a view with n members arrives, skipping messages.
func waitView(t testing.TB, g *Group, n int) View {
	t.Helper()
	for range 10000 {
		ev := next(t, g)
		if ev.Kind == EventView && len(ev.View.Members) == n {
			return ev.View
		}
	}
	t.Fatalf("no view of %d members", n)
	return View{}
}

func (e Event) String() string {
	switch e.Kind {
	case EventMessage:
		return fmt.Sprintf("message from %s unicast=%v %q", e.Origin, e.Unicast, e.Data)
	case EventView:
		return fmt.Sprintf("view %d %v", e.View.ID, e.View.Members)
	case EventNotice:
		return fmt.Sprintf("notice %v", e.Err)
	}
	return "?"
}

func mustErrorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// testContext bounds a test's waits, so that a bug fails the test instead of
// hanging it.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// create starts node name (with mod) and creates group "g" on it.
func (c *cluster) create(ctx context.Context, name string, mod func(*Config)) *Group {
	c.t.Helper()
	g, err := c.node(name, mod).Create(ctx, "g")
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

// join starts node name (with mod) and joins group "g" at the node named
// coordinator.
func (c *cluster) join(ctx context.Context, name, coordinator string, mod func(*Config)) *Group {
	c.t.Helper()
	g, err := c.node(name, mod).Join(ctx, "g", coordinator)
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}
