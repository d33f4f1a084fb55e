package remote_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/repld/repld/internal/clientserver"
	"github.com/repld/repld/internal/cluster"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/replica"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/memstore"
	"github.com/repld/repld/storage/remote"
)

// bound guards every wait of these tests; it is never a timing assertion.
const bound = 30 * time.Second

// serve starts a client server for cfg on a free loopback port (or addr),
// closed by t's cleanup.
func serve(t testing.TB, addr string, cfg clientserver.Config) *clientserver.Server {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s, err := clientserver.Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// serveReplica serves a replica's read view, announcing what it applies.
func serveReplica(t testing.TB, r *replica.Replica) *clientserver.Server {
	t.Helper()
	s := serve(t, "", clientserver.Config{Store: r.ReadView(), ReadOnly: true})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		clientserver.Follow(ctx, s.Hub(), r.ReadView(), r.WaitFor, nil)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return s
}

func memStore(t testing.TB) storage.Storage {
	t.Helper()
	s, err := memstore.New(memstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// open opens a client, closed by t's cleanup.
func open(t testing.TB, cfg remote.Config) *remote.Client {
	t.Helper()
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 50*time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := remote.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// clusterWithServers starts a primary (applied mode, k=1) with n replicas,
// each serving clients, and returns the cluster and the client ports.
func clusterWithServers(t testing.TB, n int) (*cluster.Cluster, string, []string) {
	t.Helper()
	c := cluster.New(t, cluster.Config{Sync: primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: bound}})
	var raddrs []string
	var names []string
	for i := range n {
		name := "r" + string(rune('1'+i))
		r := c.AddReplica(name)
		names = append(names, name)
		raddrs = append(raddrs, serveReplica(t, r.R).Addr().String())
	}
	if n > 0 {
		c.WaitHealthy(names...)
	}
	p := serve(t, "", clientserver.Config{Store: c.Primary})
	return c, p.Addr().String(), raddrs
}

// eventually polls cond until it is true, failing the test after bound.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}
