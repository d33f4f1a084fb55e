package main

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/repld/repld/internal/clientserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEmbedded increments from several goroutines on an embedded primary,
// then reopens it: no increment is lost.
func TestEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, closeBackend, err := openEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &Counters{Store: s}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.Increment(ctx, "visits"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := closeBackend(); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, dir, "", "", "visits", 1); err != nil {
		t.Fatal(err)
	}
	s, closeBackend, err = openEmbedded(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackend()
	if v, err := (&Counters{Store: s}).Get(ctx, "visits"); err != nil || v != 21 {
		t.Fatalf("visits = %d, %v; want 21", v, err)
	}
}

// TestRemote runs the program against a primary's client port.
func TestRemote(t *testing.T) {
	ctx := context.Background()
	s, closeBackend, err := openEmbedded(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackend()
	srv, err := clientserver.Listen("127.0.0.1:0", clientserver.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := run(ctx, "", srv.Addr().String(), "", "hits", 3); err != nil {
		t.Fatal(err)
	}
	if v, err := (&Counters{Store: srv.Storage()}).Get(ctx, "hits"); err != nil || v != 3 {
		t.Fatalf("hits = %d, %v; want 3", v, err)
	}
}
