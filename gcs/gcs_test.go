package gcs

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestBasicMulticast(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 1)
	p := c.node("p", nil)
	a := c.node("a", nil)
	b := c.node("b", nil)
	gp, err := p.Create(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ga, err := a.Join(ctx, "g", "p")
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, ga, 2)
	gb, err := b.Join(ctx, "g", "p")
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, gb, 3)
	waitView(t, ga, 3)
	waitView(t, gp, 3)
	for i := range 100 {
		if err := gp.Multicast(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []*Group{ga, gb} {
		for i := range 100 {
			ev := next(t, g)
			if ev.Kind != EventMessage || ev.Data[0] != byte(i) || ev.Origin != gp.Self() {
				t.Fatalf("%s: event %d: %v", g.Self(), i, ev)
			}
		}
	}
	if err := ga.Multicast(ctx, []byte("from a")); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{gp, gb} {
		ev := next(t, g)
		if ev.Kind != EventMessage || string(ev.Data) != "from a" || ev.Origin != ga.Self() {
			t.Fatalf("%s: %v", g.Self(), ev)
		}
	}
	if err := gb.Send(ctx, gp.Self(), []byte("ack")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, gp); !ev.Unicast || string(ev.Data) != "ack" || ev.Origin != gb.Self() {
		t.Fatalf("%v", ev)
	}
	if err := ga.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	v := waitView(t, gb, 2)
	if v.Contains(ga.Self()) {
		t.Fatalf("view %v still has %s", v, ga.Self())
	}
	_ = context.Background
}

func TestPending(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 1)
	gp := c.create(ctx, "p", nil)
	ga := c.join(ctx, "a", "p", nil)
	waitView(t, ga, 2)
	if n := ga.Pending(); n != 0 {
		t.Fatalf("Pending with nothing sent = %d", n)
	}
	if err := gp.Multicast(ctx, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if err := gp.Multicast(ctx, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ga); string(ev.Data) != "one" {
		t.Fatalf("first event %v", ev)
	}
	// The second message may still be on its way: Pending is what has
	// arrived and is not yet received.
	for ga.Pending() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the second message never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	if n := ga.Pending(); n != 1 {
		t.Fatalf("Pending with one message queued = %d", n)
	}
	if ev := next(t, ga); string(ev.Data) != "two" || ga.Pending() != 0 {
		t.Fatalf("second event %v, then Pending %d", ev, ga.Pending())
	}
}

// TestUnicastsToCoordinatorStayInOrder: a member's unicasts to the
// coordinator, and a multicast between them, arrive in order and complete,
// also while the coordinator's queue is full because its application does
// not receive (the member's messages then wait in the relay).
func TestUnicastsToCoordinatorStayInOrder(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 1)
	small := func(cfg *Config) { cfg.WindowMessages = 8 }
	gp := c.create(ctx, "p", small)
	ga := c.join(ctx, "a", "p", small)
	waitView(t, ga, 2)
	waitView(t, gp, 2)
	const n = 200
	sent := make(chan error, 1)
	go func() {
		for i := range n {
			var err error
			if i == n/2 {
				err = ga.Multicast(ctx, []byte(fmt.Sprint(i)))
			} else {
				err = ga.Send(ctx, gp.Self(), []byte(fmt.Sprint(i)))
			}
			if err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	for i := range n {
		if i == 10 {
			// Let the coordinator's queue fill: the reader must then leave
			// the member's messages to the relay goroutine.
			time.Sleep(50 * time.Millisecond)
		}
		ev := next(t, gp)
		if ev.Kind != EventMessage || string(ev.Data) != fmt.Sprint(i) || ev.Unicast != (i != n/2) {
			t.Fatalf("event %d is %v (unicast %v), want message %d", i, ev, ev.Unicast, i)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}
