package gcs

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestFIFOUnderLinkFaults has three senders (the coordinator and two
// members) multicast while links are cut at random and writes dropped, and
// checks that every member receives every other sender's messages once, in
// order. Every tenth message of a member goes to the coordinator alone: it
// is in the same FIFO stream as the multicasts.
func TestFIFOUnderLinkFaults(t *testing.T) {
	const perSender = 3000
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := newCluster(t, 7)
	small := func(cfg *Config) {
		cfg.WindowMessages = 64
		cfg.FailureTimeout = 2 * time.Second
		cfg.SlowMemberTimeout = 5 * time.Second
	}
	p := c.node("p", small)
	gp, err := p.Create(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c"}
	groups := []*Group{gp}
	for _, name := range names {
		g, err := c.node(name, small).Join(ctx, "g", "p")
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	for _, g := range groups {
		waitView(t, g, 4)
	}
	senders := groups[:3] // p, a, b send; c only receives

	// Faults: cut a random member's link now and then, and drop writes.
	faultsDone := make(chan struct{})
	stopFaults := make(chan struct{})
	go func() {
		defer close(faultsDone)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 200; i++ {
			select {
			case <-stopFaults:
				return
			case <-time.After(time.Duration(1+rng.IntN(5)) * time.Millisecond):
			}
			c.net.CloseLinks("p", names[rng.IntN(len(names))])
		}
	}()
	for _, name := range names {
		if err := c.net.SetDropProbability(name, "p", 0.002); err != nil {
			t.Fatal(err)
		}
		if err := c.net.SetDropProbability("p", name, 0.002); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for _, g := range senders {
		wg.Go(func() {
			for i := range perSender {
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(i))
				send := g.Multicast
				if g != gp && i%10 == 0 {
					send = func(ctx context.Context, parts ...[]byte) error { return g.Send(ctx, gp.Self(), parts...) }
				}
				if err := send(ctx, b[:]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, g := range groups {
		wg.Go(func() {
			want := map[MemberID]uint64{}
			expect := 0
			// skip reports whether this receiver does not get message n of
			// sender s (a unicast to the coordinator).
			skip := func(s MemberID, n uint64) bool { return g != gp && s != gp.Self() && n%10 == 0 }
			for _, s := range senders {
				if s != g {
					want[s.Self()] = 0
					for n := range uint64(perSender) {
						if !skip(s.Self(), n) {
							expect++
						}
					}
					for skip(s.Self(), want[s.Self()]) {
						want[s.Self()]++
					}
				}
			}
			for got := 0; got < expect; {
				ev, err := g.Receive(ctx)
				if err != nil {
					errs <- err
					return
				}
				switch ev.Kind {
				case EventNotice:
					errs <- ev.Err
					return
				case EventMessage:
					n := binary.BigEndian.Uint64(ev.Data)
					w, ok := want[ev.Origin]
					if !ok || n != w {
						errs <- errors.New(string(g.Self()) + ": from " + string(ev.Origin) + ": out of order")
						t.Errorf("%s: from %s got %d want %d", g.Self(), ev.Origin, n, w)
						return
					}
					if ev.Unicast != (n%10 == 0 && ev.Origin != gp.Self()) {
						t.Errorf("%s: message %d from %s has unicast %v", g.Self(), n, ev.Origin, ev.Unicast)
					}
					for want[ev.Origin] = n + 1; skip(ev.Origin, want[ev.Origin]); want[ev.Origin]++ {
					}
					got++
				}
			}
		})
	}
	wg.Wait()
	close(stopFaults)
	<-faultsDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := c.net.Stats(); s.Broken < 10 {
		t.Errorf("only %d connections broken: the faults did not hit", s.Broken)
	}
}
