package multihost

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/remote"
)

// Object sizes of the workloads: small objects travel in one message per
// transaction; a large one makes its transaction stream, in fragments.
const (
	smallObject = 1000
	largeObject = 200 << 10
)

// startThree starts the primary p1 (applied, k = 1) and the replicas r1
// and r2 on hosts of their own, and waits until both are healthy.
func (c *cluster) startThree() (p1, r1, r2 *node) {
	p1 = c.startPrimary("p1")
	r1, r2 = c.startReplica("r1", p1), c.startReplica("r2", p1)
	c.waitReplicaState(p1, "r1", "healthy")
	c.waitReplicaState(p1, "r2", "healthy")
	return p1, r1, r2
}

// TestReplicationAcrossHosts runs a primary (applied, k = 1) and two
// replicas on three hosts, commits through the network client from a
// fourth (the test process), and checks that every node has the same
// history up to the primary's last transaction and that reads served by
// the replicas return what was committed.
func TestReplicationAcrossHosts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p1, r1, r2 := c.startThree()

	client := openClient(t, remote.Config{Primary: []string{p1.clientAddr()}, Replicas: []string{r1.clientAddr(), r2.clientAddr()}})
	w := newWriter(client, t.Name())
	for i := range 40 {
		sizes := []int{smallObject, smallObject, smallObject}
		if i%10 == 0 {
			sizes = append(sizes, largeObject)
		}
		w.mustCommit(t, 1, sizes...)
	}
	recs, acked, last := w.snapshot()
	if st := p1.mustStatus(); st.LastTID != last.TID || st.Sync.Mode != primary.Applied.String() || st.Sync.K != 1 {
		t.Fatalf("p1 at %s with sync %+v; want the last acknowledged commit %s, applied with k = 1", st.LastTID, st.Sync, last.TID)
	}
	if got := c.waitCaughtUp(p1, r1, r2); got != last.TID {
		t.Fatalf("caught up at %s, want the last commit %s", got, last.TID)
	}
	for _, n := range []*node{p1, r1, r2} {
		ch, err := n.chainAt(last.TID)
		if err != nil {
			t.Fatal(err)
		}
		if ch.Chain != last.Chain.String() {
			t.Errorf("%s: chain at %s is %s, the commit returned %s", n.name, last.TID, ch.Chain, last.Chain)
		}
	}

	// Each replica on its own: a client of that one node reads only there.
	for _, r := range []*node{r1, r2} {
		rc := openClient(t, remote.Config{Primary: []string{r.clientAddr()}, AnyRole: true})
		if n, err := verify(t.Context(), rc, recs); err != nil {
			t.Errorf("reading %d objects from %s: %v", n, r.name, err)
		}
	}
	// The client of the whole cluster sends its reads to the replicas,
	// which have caught up: none falls back to the primary.
	before := client.Stats()
	n, err := verify(t.Context(), client, recs)
	if err != nil {
		t.Errorf("reading %d objects through the cluster's client: %v", n, err)
	}
	after := client.Stats()
	if reads := after.ReplicaReads - before.ReplicaReads; reads != uint64(n) || after.ReplicaFallbacks != before.ReplicaFallbacks {
		t.Errorf("%d reads: %d served by replicas and %d fell back to the primary; want all by replicas", n, reads, after.ReplicaFallbacks-before.ReplicaFallbacks)
	}
	t.Logf("%d commits of %d objects acknowledged; p1, r1 and r2 agree at %s (chain %s)", acked, len(recs), last.TID, last.Chain)
}

// TestPausedReplicaCatchesUp freezes r2's host (docker pause) while the
// client keeps committing: r1 meets k = 1, so commits keep succeeding,
// and the primary finds r2 silent and reports it disconnected. Unpaused,
// r2 catches up and its history equals the primary's.
func TestPausedReplicaCatchesUp(t *testing.T) {
	t.Parallel()
	isolatedReplica(t, "paused", (*node).pause, (*node).unpause)
}

// TestReplicaCutOffCatchesUp cuts r2 off the network (docker network
// disconnect) while the client keeps committing: the primary reports it
// disconnected, counts only r1 for sync and keeps committing. Connected
// again, r2 is healthy again and catches up.
func TestReplicaCutOffCatchesUp(t *testing.T) {
	t.Parallel()
	isolatedReplica(t, "cut off", (*node).disconnect, (*node).connect)
}

// isolatedReplica is the scenario of the two tests above: isolate r2,
// commit while the primary finds it gone, restore it, commit more while
// it catches up, and check it has everything.
func isolatedReplica(t *testing.T, how string, isolate, restore func(*node)) {
	c := newCluster(t)
	p1, r1, r2 := c.startThree()
	client := openClient(t, remote.Config{Primary: []string{p1.clientAddr()}})
	w := newWriter(client, t.Name())
	w.mustCommit(t, 10, smallObject, smallObject)
	c.waitCaughtUp(p1, r1, r2)
	_, ackedBefore, _ := w.snapshot()

	isolate(r2)
	isolatedAt := time.Now()
	stop := w.background(t.Context(), 20*time.Millisecond, 2000, smallObject, smallObject)
	// What the primary reports for a replica whose host went silent: its
	// failure detector drops it from the group, the registry says
	// disconnected, and sync counts the one healthy replica left, which
	// is enough for k = 1.
	waitUntil(t, fmt.Sprintf("p1 reports %s r2 disconnected, with r1 meeting k = 1", how), waitTimeout, func() (bool, string) {
		st, err := p1.status()
		if err != nil {
			return false, err.Error()
		}
		ok := st.replica("r2").State == primary.StateDisconnected.String() &&
			st.replica("r1").State == primary.StateHealthy.String() && st.Sync.Healthy == 1 && !st.Sync.Degraded
		return ok, fmt.Sprintf("%+v, r1 %+v, r2 %+v", st.Sync, st.replica("r1"), st.replica("r2"))
	})
	detected := time.Since(isolatedAt)
	// Commits go on with r2 gone from the group, not only while the
	// primary still counted it.
	_, ackedDetected, _ := w.snapshot()
	waitUntil(t, fmt.Sprintf("10 more commits with r2 %s and disconnected", how), waitTimeout, func() (bool, string) {
		_, acked, _ := w.snapshot()
		return acked >= ackedDetected+10, fmt.Sprintf("%d acknowledged", acked)
	})
	if err := stop(); err != nil {
		t.Fatalf("a commit failed with r2 %s and r1 healthy: %v", how, err)
	}
	_, ackedIsolated, _ := w.snapshot()
	st := p1.mustStatus()
	if r := st.replica("r2"); r.LastAppliedTID >= st.LastTID {
		t.Fatalf("r2 %s has applied %s, the primary's last TID is %s: it was not isolated", how, r.LastAppliedTID, st.LastTID)
	}

	restore(r2)
	// Commits while it catches up: it must go live across them.
	w.mustCommit(t, 10, smallObject, largeObject)
	recs, acked, last := w.snapshot()
	if got := c.waitCaughtUp(p1, r1, r2); got != last.TID {
		t.Fatalf("caught up at %s, want the last commit %s", got, last.TID)
	}
	if _, err := r2.get("/healthz", nil); err != nil {
		t.Errorf("r2 back: %v", err)
	}
	if st := r2.mustStatus(); st.State != "live" || st.LastTID != last.TID {
		t.Errorf("r2 back: state %s at %s, want live at %s", st.State, st.LastTID, last.TID)
	}
	rc := openClient(t, remote.Config{Primary: []string{r2.clientAddr()}, AnyRole: true})
	if n, err := verify(t.Context(), rc, recs); err != nil {
		t.Errorf("reading %d objects from r2: %v", n, err)
	}
	t.Logf("r2 %s: p1 reported it disconnected after %v; %d commits meanwhile, %d in all; r2 caught up to %s",
		how, detected.Round(time.Millisecond), ackedIsolated-ackedBefore, acked, last.TID)
}

// TestPrimaryKilledReplicaPromoted kills the primary's host during a
// workload in applied mode, promotes r1 with replctl as the README's
// operator does (r2 is told to follow it), and checks that the client
// finds the new primary by itself and commits again, and that every
// commit acknowledged before the kill is on r1, data and history.
//
// r2 is cut off during the last commits before the kill, so r1 alone
// acknowledges them and is the most advanced replica, the one the README
// says to promote (with both running, either may be ahead by the last
// commits, and replctl rightly refuses to promote the other). Cut off
// rather than paused: a paused host's kernel still receives what the
// primary sends, which could leave it ahead of r1 by a transaction that
// was never acknowledged.
func TestPrimaryKilledReplicaPromoted(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p1, r1, r2 := c.startThree()
	client := openClient(t, remote.Config{Primary: []string{p1.clientAddr(), r1.clientAddr()}})
	w := newWriter(client, t.Name())
	w.mustCommit(t, 20, smallObject, smallObject)
	c.waitCaughtUp(p1, r1, r2)

	r2.disconnect()
	_, ackedBefore, _ := w.snapshot()
	// Two committers, so that commits are in flight when the primary dies.
	stops := []func() error{
		w.background(t.Context(), time.Millisecond, 5000, smallObject, smallObject),
		w.background(t.Context(), time.Millisecond, 5000, smallObject, largeObject),
	}
	waitUntil(t, "20 commits acknowledged by r1 alone", waitTimeout, func() (bool, string) {
		_, acked, _ := w.snapshot()
		return acked >= ackedBefore+20, fmt.Sprintf("%d acknowledged", acked)
	})
	p1.kill()
	for _, stop := range stops {
		// Commits in flight fail (the connection is gone) or were stopped:
		// either way they were not acknowledged.
		if err := stop(); err != nil {
			t.Logf("commit in flight when p1 was killed: %v", err)
		}
	}
	recs, acked, last := w.snapshot()
	r2.connect()

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.s.replctl, "--nodes", r1.adminAddr()+","+r2.adminAddr(), "--timeout", "10s", "promote", "r1").CombinedOutput()
	t.Logf("replctl promote r1:\n%s", out)
	if err != nil {
		t.Fatalf("replctl promote r1: %v", err)
	}
	if st := r1.mustStatus(); st.Role != "primary" || st.Epoch != 2 || st.LastTID < last.TID {
		t.Fatalf("r1 after promotion: %s, epoch %d, at %s; want primary, epoch 2, at or after the last acknowledged commit %s", st.Role, st.Epoch, st.LastTID, last.TID)
	}

	// Every acknowledged commit is on r1: the history up to the last one
	// (its chain value covers all before it) and every object written.
	if ch, err := r1.chainAt(last.TID); err != nil {
		t.Errorf("the last acknowledged commit %s on r1: %v", last.TID, err)
	} else if ch.Chain != last.Chain.String() {
		t.Errorf("r1's chain at the last acknowledged commit %s is %s, the commit returned %s", last.TID, ch.Chain, last.Chain)
	}
	rc := openClient(t, remote.Config{Primary: []string{r1.clientAddr()}})
	if n, err := verify(t.Context(), rc, recs); err != nil {
		t.Errorf("reading the %d objects of acknowledged commits from r1: %v", n, err)
	}

	// The client finds the new primary among its addresses by itself:
	// calls fail at once while it has none (retryable, as the README
	// says), then succeed.
	var commit storage.Commit
	var failures []error
	searchStart := time.Now()
	waitUntil(t, "the client commits again", waitTimeout, func() (bool, string) {
		commit, err = w.commit(t.Context(), smallObject)
		if err != nil {
			failures = append(failures, err)
			return false, err.Error()
		}
		return true, ""
	})
	found := time.Since(searchStart)
	for _, err := range failures {
		if !errors.Is(err, remote.ErrDisconnected) {
			t.Errorf("while the client looked for the new primary: %v; want errors matching remote.ErrDisconnected", err)
		}
	}
	if commit.TID <= last.TID {
		t.Errorf("commit after the promotion at %s, not after the last acknowledged one %s", commit.TID, last.TID)
	}
	// r2 follows r1 and has everything, the new commit included.
	if got := c.waitCaughtUp(r1, r2); got != commit.TID {
		t.Errorf("r2 caught up with r1 at %s, want the new commit %s", got, commit.TID)
	}
	t.Logf("%d commits acknowledged before p1 was killed (%d with r2 cut off), all on r1; the client committed on r1 after %v (%d retryable failures); r1 and r2 agree at %s",
		acked, acked-ackedBefore, found.Round(time.Millisecond), len(failures), commit.TID)
}
