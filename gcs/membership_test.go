package gcs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestSlowMemberEvicted: a member that stops receiving fills its window; the
// coordinator's multicast waits SlowMemberTimeout, evicts it and goes on;
// the member is told, rejoins and gets a new view. The member that keeps up
// is never evicted.
func TestSlowMemberEvicted(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 2)
	small := func(cfg *Config) { cfg.WindowMessages = 16 }
	gp := c.create(ctx, "p", small)
	slow := c.join(ctx, "slow", "p", small)
	waitView(t, gp, 2)
	fast := c.join(ctx, "fast", "p", small)
	waitView(t, fast, 3)
	slowID, fastID := slow.Self(), fast.Self()

	const n = 200
	var wg sync.WaitGroup
	fastErr := make(chan error, 1)
	wg.Go(func() {
		got := 0
		for got < n {
			ev, err := fast.Receive(ctx)
			if err != nil {
				fastErr <- err
				return
			}
			switch ev.Kind {
			case EventNotice:
				fastErr <- ev.Err
				return
			case EventMessage:
				if int(ev.Data[0]) != got%256 {
					fastErr <- fmt.Errorf("message %d has %d", got, ev.Data[0])
					return
				}
				got++
			}
		}
		fastErr <- nil
	})
	for i := range n {
		if err := gp.Multicast(ctx, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := <-fastErr; err != nil {
		t.Fatalf("fast member: %v", err)
	}
	if v := gp.View(); v.Contains(slowID) || !v.Contains(fastID) {
		t.Fatalf("view after eviction: %v", v)
	}
	// The slow member finds, after what it had received, that it was evicted,
	// then a view of its new session.
	var sawNotice bool
	for range 100 {
		ev := next(t, slow)
		if ev.Kind == EventNotice {
			mustErrorIs(t, ev.Err, ErrEvicted)
			sawNotice = true
		}
		if ev.Kind == EventView && sawNotice {
			// The new session's first view has the member under a new id.
			// (It may have been evicted again since: the test does not
			// read from it while multicasting.)
			if ev.View.Contains(slowID) || !slices.ContainsFunc(ev.View.Members, func(m MemberID) bool {
				return strings.HasPrefix(string(m), "slow#")
			}) {
				t.Fatalf("view after rejoin %v, old id %s", ev.View, slowID)
			}
			return
		}
	}
	t.Fatal("slow member was not told")
}

// TestMessageSizeLimit: the limit holds on send (an error, nothing sent) and
// on receive (the connection is dropped, nothing delivered); a node with
// another MaxMessage cannot join.
func TestMessageSizeLimit(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 3)
	limit := func(cfg *Config) { cfg.MaxMessage = 1000; cfg.WindowBytes = 1 << 20 }
	p := c.node("p", limit)
	gp, err := p.Create(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ga := c.join(ctx, "a", "p", limit)
	waitView(t, gp, 2)
	waitView(t, ga, 2)

	// Send side: the sum of the parts counts.
	for _, g := range []*Group{gp, ga} {
		err := g.Multicast(ctx, make([]byte, 600), make([]byte, 401))
		mustErrorIs(t, err, ErrMessageTooLarge)
		if want := "message of 1001 bytes exceeds MaxMessage 1000"; !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
		if err := g.Multicast(ctx, make([]byte, 600), make([]byte, 400)); err != nil {
			t.Fatal(err)
		}
	}
	if ev := next(t, ga); len(ev.Data) != 1000 {
		t.Fatalf("a got %v", ev)
	}
	if ev := next(t, gp); len(ev.Data) != 1000 {
		t.Fatalf("p got %v", ev)
	}

	// Receive side: a peer that sends too large a frame is cut off and
	// nothing of it is delivered.
	x := c.node("x", limit)
	conn, br, _, err := x.dial(ctx, "p", &frame{group: []byte("g")})
	if err != nil {
		t.Fatal(err)
	}
	var w frameWriter
	w.message(1, newPayload("", "", [][]byte{make([]byte, 1001)}, 1001))
	if err := w.flush(conn); err != nil {
		t.Fatal(err)
	}
	var f frame
	err = newDecoder(1000).read(br, &f)
	for err == nil && f.typ != frameBye {
		err = newDecoder(1000).read(br, &f)
	}
	conn.Close()
	if err == nil {
		t.Fatalf("coordinator answered an oversized frame with bye %d %q", f.code, f.text)
	}
	// p saw x join and then fail: views only, no message.
	if err := gp.Multicast(ctx, []byte("marker")); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next(t, ga)
		if ev.Kind == EventMessage {
			if string(ev.Data) != "marker" {
				t.Fatalf("a got %v", ev)
			}
			break
		}
	}
	for gp.events.len() > 0 {
		if ev := next(t, gp); ev.Kind == EventMessage {
			t.Fatalf("p got %v from the oversized sender", ev)
		}
	}

	// Another MaxMessage cannot join.
	_, err = c.node("y", func(cfg *Config) { cfg.MaxMessage = 2000; cfg.WindowBytes = 1 << 20 }).Join(ctx, "g", "p")
	mustErrorIs(t, err, ErrIncompatible)
	if !strings.Contains(err.Error(), "MaxMessage 2000, the coordinator uses 1000") {
		t.Fatalf("error %q does not name the sizes", err)
	}
}

// TestPartitionedMemberRejoins: a member cut off longer than the failure
// timeout is removed; it reports the coordinator lost, and when the
// partition heals it learns it was removed and rejoins with a new id.
func TestPartitionedMemberRejoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := testContext(t)
		c := newCluster(t, 4)
		gp := c.create(ctx, "p", nil)
		ga := c.join(ctx, "a", "p", nil)
		waitView(t, gp, 2)
		waitView(t, ga, 2)
		old := ga.Self()
		cfg := c.nodes["p"].cfg

		start := time.Now()
		c.net.Partition("p", "a")
		waitView(t, gp, 1)
		// Removal takes the failure timeout to notice the silence and the
		// failure timeout of disconnection, give or take a heartbeat.
		if d := time.Since(start); d < cfg.FailureTimeout || d > 2*cfg.FailureTimeout+3*cfg.HeartbeatInterval {
			t.Fatalf("member removed after %v (failure timeout %v)", d, cfg.FailureTimeout)
		}
		ev := next(t, ga)
		if ev.Kind != EventNotice {
			t.Fatalf("a got %v", ev)
		}
		mustErrorIs(t, ev.Err, ErrCoordinatorLost)
		if err := gp.Multicast(ctx, []byte("missed")); err != nil {
			t.Fatal(err)
		}
		c.net.Heal("p", "a")
		ev = next(t, ga)
		mustErrorIs(t, ev.Err, ErrRemoved)
		v := waitView(t, ga, 2)
		if v.Contains(old) || !v.Contains(ga.Self()) || ga.Self() == old {
			t.Fatalf("view %v after rejoin (old id %s, new %s)", v, old, ga.Self())
		}
		if v2 := waitView(t, gp, 2); v2.ID != v.ID {
			t.Fatalf("coordinator at view %d, member at %d", v2.ID, v.ID)
		}
		if err := gp.Multicast(ctx, []byte("after")); err != nil {
			t.Fatal(err)
		}
		if ev := next(t, ga); string(ev.Data) != "after" {
			t.Fatalf("a got %v", ev)
		}
		c.close()
	})
}

// TestViewsConsistent: members join concurrently, then half of them leave
// concurrently; every member sees view ids increase by one, and every two
// members agree on the members of each view they both saw.
func TestViewsConsistent(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c := newCluster(t, 5)
	gp := c.create(ctx, "p", nil)
	const members = 6
	seen := make([][]View, members)
	var joined, wg sync.WaitGroup
	joined.Add(members)
	errs := make(chan error, members)
	for i := range members {
		node := c.node(fmt.Sprintf("m%d", i), nil)
		wg.Go(func() {
			// Receive views until one satisfies done.
			views := func(g *Group, done func(View) bool) error {
				for {
					ev, err := g.Receive(ctx)
					if err != nil {
						return err
					}
					if ev.Kind == EventView {
						seen[i] = append(seen[i], ev.View)
						if done(ev.View) {
							return nil
						}
					}
				}
			}
			g, err := node.Join(ctx, "g", "p")
			if err == nil {
				err = views(g, func(v View) bool { return len(v.Members) == members+1 })
			}
			joined.Done()
			if err != nil {
				errs <- err
				return
			}
			joined.Wait()
			if i%2 == 0 {
				errs <- g.Leave(ctx)
				return
			}
			errs <- views(g, func(v View) bool { return len(v.Members) == 1+members/2 })
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var coord []View
	for gp.events.len() > 0 {
		if ev := next(t, gp); ev.Kind == EventView {
			coord = append(coord, ev.View)
		}
	}
	if last := coord[len(coord)-1]; len(last.Members) != 1+members/2 {
		t.Fatalf("coordinator's last view %v", last)
	}
	byID := map[uint64]View{}
	for j, v := range coord {
		if j > 0 && v.ID != coord[j-1].ID+1 {
			t.Fatalf("coordinator: view %d after %d", v.ID, coord[j-1].ID)
		}
		byID[v.ID] = v
	}
	for i, vs := range seen {
		for j, v := range vs {
			if j > 0 && v.ID != vs[j-1].ID+1 {
				t.Fatalf("member %d: view %d after %d", i, v.ID, vs[j-1].ID)
			}
			if cv, ok := byID[v.ID]; !ok || !slices.Equal(cv.Members, v.Members) {
				t.Fatalf("member %d: view %v, coordinator had %v", i, v, cv)
			}
		}
	}
}

// TestOpenGroupAndCoordinatorGone: a non-member sends to the group; when the
// coordinator ends the group its members are told and then closed.
func TestOpenGroupAndCoordinatorGone(t *testing.T) {
	ctx := testContext(t)
	c := newCluster(t, 6)
	gp := c.create(ctx, "p", nil)
	ga := c.join(ctx, "a", "p", nil)
	waitView(t, ga, 2)
	waitView(t, gp, 2)
	x := c.node("x", nil)
	if err := x.SendToGroup(ctx, "p", "g", []byte("hello "), []byte("all")); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{gp, ga} {
		if ev := next(t, g); ev.Origin != "x" || string(ev.Data) != "hello all" {
			t.Fatalf("%s got %v", g.Self(), ev)
		}
	}
	mustErrorIs(t, x.SendToGroup(ctx, "p", "nope", []byte("x")), ErrNoSuchGroup)
	if _, err := x.Join(ctx, "nope", "p"); !errors.Is(err, ErrNoSuchGroup) {
		t.Fatalf("join unknown group: %v", err)
	}
	if _, err := c.nodes["p"].Create(ctx, "g"); !errors.Is(err, ErrGroupExists) {
		t.Fatalf("create twice: %v", err)
	}

	if err := gp.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	ev := next(t, ga)
	mustErrorIs(t, ev.Err, ErrGroupClosed)
	_, err := ga.Receive(ctx)
	mustErrorIs(t, err, ErrClosed)
	mustErrorIs(t, ga.Multicast(ctx, []byte("x")), ErrClosed)
	_, err = gp.Receive(ctx)
	mustErrorIs(t, err, ErrClosed)
}

// TestCoordinatorLost: when the coordinator's node goes away, a member is
// told after the failure timeout instead of hanging.
func TestCoordinatorLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := testContext(t)
		c := newCluster(t, 8)
		p := c.node("p", nil)
		if _, err := p.Create(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		ga := c.join(ctx, "a", "p", nil)
		waitView(t, ga, 2)
		p.Close()
		start := time.Now()
		ev := next(t, ga)
		mustErrorIs(t, ev.Err, ErrCoordinatorLost)
		// It counts from when it last heard from the coordinator, which the
		// links sample once a heartbeat interval.
		if d := time.Since(start); d < p.cfg.FailureTimeout-p.cfg.HeartbeatInterval || d > 2*p.cfg.FailureTimeout {
			t.Fatalf("told after %v, failure timeout %v", d, p.cfg.FailureTimeout)
		}
		ctx2, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := ga.Leave(ctx2); err == nil {
			t.Fatal("leave without a coordinator succeeded")
		}
		c.close()
	})
}

// TestDisconnectedMemberFallsBehind: while a member is cut off, the
// coordinator sends more than its window holds; after SlowMemberTimeout the
// member is dropped, and when it comes back it is told it fell behind (not
// handed a gap) and rejoins.
func TestDisconnectedMemberFallsBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := testContext(t)
		c := newCluster(t, 9)
		mod := func(cfg *Config) {
			cfg.WindowMessages = 8
			cfg.FailureTimeout = 2 * time.Second
			cfg.SlowMemberTimeout = 300 * time.Millisecond
		}
		gp := c.create(ctx, "p", mod)
		ga := c.join(ctx, "a", "p", mod)
		waitView(t, gp, 2)
		waitView(t, ga, 2)
		c.net.Partition("p", "a")
		start := time.Now()
		for i := range 10 {
			if err := gp.Multicast(ctx, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("sender waited %v for the disconnected member, less than SlowMemberTimeout", d)
		}
		if v := gp.View(); len(v.Members) != 1 {
			t.Fatalf("view %v", v)
		}
		c.net.Heal("p", "a")
		ev := next(t, ga)
		mustErrorIs(t, ev.Err, ErrFellBehind)
		waitView(t, ga, 2)
		c.close()
	})
}

// TestSilentCoordinatorDetected: the connection stays up but nothing from
// the coordinator arrives any more; the member notices by the missing
// heartbeats and reports the coordinator lost.
func TestSilentCoordinatorDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := testContext(t)
		c := newCluster(t, 10)
		if _, err := c.node("p", nil).Create(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		ga := c.join(ctx, "a", "p", nil)
		waitView(t, ga, 2)
		cfg := c.nodes["a"].cfg
		if err := c.net.Delay("p", "a", time.Hour); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ev := next(t, ga)
		mustErrorIs(t, ev.Err, ErrCoordinatorLost)
		if d := time.Since(start); d < cfg.FailureTimeout-cfg.HeartbeatInterval || d > 2*cfg.FailureTimeout+4*cfg.HeartbeatInterval {
			t.Fatalf("coordinator reported lost after %v (failure timeout %v)", d, cfg.FailureTimeout)
		}
		c.close()
	})
}
