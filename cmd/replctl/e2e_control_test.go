package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/repld/repld/internal/node/nodetest"
	"github.com/repld/repld/primary"
	"github.com/repld/repld/storage"
	"github.com/repld/repld/storage/faultstore"
)

// These tests run the control commands against real nodes (see
// e2e_test.go): each ends with verify proving the cluster consistent.

// waitBound bounds every wait of these tests.
const waitBound = 20 * time.Second

// waitUntil polls cond until it returns nil, failing after waitBound.
func waitUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, waitBound, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantFinalAt checks a control command's JSON report: the replica ends
// live at the primary's last TID.
func wantFinalAt(t *testing.T, r result, c *nodetest.Cluster) {
	t.Helper()
	last, err := c.Primary().Primary().LastTransaction(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rep := decode[ControlReport](t, r)
	if rep.Final == nil || rep.Final.State != "live" || rep.Final.LastTID != last {
		t.Fatalf("%s: final status %+v, want live at %s", rep.Action, rep.Final, last)
	}
}

func TestEndToEndQuarantineAndRelease(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 1})
	c.Workload(5, 2, 10)
	c.WaitCaughtUp()

	r := replctl(t, nil, clusterNodes(c), "quarantine", "r1", "--reason", "disk check")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "POST /quarantine: ok") || !strings.Contains(r.stdout, "disk check") {
		t.Errorf("quarantine output:\n%s", r.stdout)
	}
	c.WaitPrimaryQuarantined("r1")
	st := decode[statusReport](t, replctl(t, nil, clusterNodes(c), "status", "--json"))
	if row := st.Nodes[1]; row.State != "quarantined" || !strings.Contains(row.QuarantineReason, "disk check") {
		t.Errorf("status of r1 = %+v", row)
	}
	// The primary goes on; the quarantined replica applies nothing.
	c.Workload(5, 2, 10)

	r = replctl(t, nil, clusterNodes(c), "release", "r1", "--poll", "10ms", "--json")
	wantCode(t, r, 0)
	wantFinalAt(t, r, c)
	c.WaitHealthy("r1")
	wantCode(t, replctl(t, nil, clusterNodes(c), "verify"), 0)
}

// A replica whose disk fails quarantines itself; released (on a store
// reopened without the fault) it catches up and equals the primary.
func TestEndToEndReleaseAfterDiskError(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 1})
	c.Workload(3, 2, 10)
	c.WaitCaughtUp()
	r1 := c.Node("r1")
	r1.Faults().FailAlways(faultstore.OpFinishAt, errors.New("injected: disk full"))
	c.Workload(3, 2, 10)
	c.WaitPrimaryQuarantined("r1")
	waitUntil(t, "r1 quarantined itself", func() error {
		if s := r1.Replica().Status(); s.Quarantine == nil {
			return fmt.Errorf("state %s", s.State)
		}
		return nil
	})
	st := decode[statusReport](t, replctl(t, nil, clusterNodes(c), "status", "--json"))
	if row := st.Nodes[1]; row.State != "quarantined" || !strings.Contains(row.QuarantineReason, "disk full") {
		t.Errorf("status of r1 = %+v", row)
	}

	r := replctl(t, nil, clusterNodes(c), "release", "r1", "--poll", "10ms", "--json")
	wantCode(t, r, 0)
	wantFinalAt(t, r, c)
	wantCode(t, replctl(t, nil, clusterNodes(c), "verify"), 0)
}

// A divergent replica (a transaction of its own) is quarantined at hello;
// resync replaces its data, showing progress lines off a terminal.
func TestEndToEndResyncDivergentReplica(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{Replicas: 1})
	c.Workload(5, 2, 10)
	c.WaitCaughtUp()
	c.Node("r1").CommitExtra(storage.Transaction{
		Meta:    storage.TxnMeta{User: []byte("rogue")},
		Records: []storage.Record{{OID: 99, Data: []byte("only on r1")}},
	})
	c.WaitPrimaryQuarantined("r1")
	c.Workload(20, 2, 10)
	wantCode(t, replctl(t, nil, clusterNodes(c), "verify"), exitInconsistent)

	r := replctl(t, nil, clusterNodes(c), "resync", "r1", "--poll", "5ms")
	wantCode(t, r, 0)
	for _, want := range []string{"POST /replicas/r1/release: ok", "POST /resync: ok", "r1: replica live"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("resync output lacks %q:\n%s", want, r.stdout)
		}
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	addr := c.Node("r1").AdminAddr()
	for _, l := range lines {
		if !strings.HasPrefix(l, addr+": caught up ") {
			t.Errorf("progress line %q, want %q…", l, addr+": caught up ")
		}
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "caught up 100%") {
		t.Errorf("last progress line %q, want 100%%", last)
	}
	wantCode(t, replctl(t, nil, clusterNodes(c), "verify"), 0)
}

// commitNew commits one transaction writing a new object through p.
func commitNew(ctx context.Context, p *primary.Primary, oid storage.OID) (storage.Commit, error) {
	txn, err := p.Begin(ctx, storage.TxnMeta{User: []byte("workload")})
	if err != nil {
		return storage.Commit{}, err
	}
	if err := txn.Store(ctx, oid, 0, fmt.Appendf(nil, "object %s", oid)); err != nil {
		return storage.Commit{}, errors.Join(err, txn.Abort(ctx))
	}
	if err := txn.Vote(ctx); err != nil {
		return storage.Commit{}, errors.Join(err, txn.Abort(ctx))
	}
	return txn.Finish(ctx)
}

// tids returns every TID in s with its chain value.
func tids(t *testing.T, s storage.Storage) map[storage.TID]storage.Checksum {
	t.Helper()
	ctx := t.Context()
	it, err := s.Iterator(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[storage.TID]storage.Checksum{}
	for {
		txn, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if out[txn.TID], err = s.Chain(ctx, txn.TID); err != nil {
			t.Fatal(err)
		}
	}
}

// firstDifference is the first TID at which the histories of a and b
// differ, and on which side it is: what diff A B should find.
func firstDifference(a, b map[storage.TID]storage.Checksum) (storage.TID, string) {
	all := make([]storage.TID, 0, len(a)+len(b))
	for tid := range a {
		all = append(all, tid)
	}
	for tid := range b {
		all = append(all, tid)
	}
	slices.Sort(all)
	for _, tid := range slices.Compact(all) {
		ca, inA := a[tid]
		cb, inB := b[tid]
		switch {
		case !inB:
			return tid, "only-a"
		case !inA:
			return tid, "only-b"
		case ca != cb:
			return tid, "differs"
		}
	}
	return 0, ""
}

// Promotion under a workload in applied mode with k=1: every commit whose
// Finish returned survives, the other replica follows, and the old
// primary, back with a transaction of its own, is found divergent.
func TestEndToEndPromote(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.Options{
		Replicas: 2,
		Sync:     primary.SyncPolicy{Mode: primary.Applied, Replicas: 1, Timeout: waitBound},
	})
	all := clusterNodes(c)
	old := c.Node(nodetest.PrimaryName)
	p := old.Primary()
	var acked []storage.TID
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 100000 {
			cm, err := commitNew(context.Background(), p, storage.OID(1000+i))
			if err != nil {
				return
			}
			acked = append(acked, cm.TID)
		}
	}()
	waitUntil(t, "workload under way", func() error {
		if n := p.Status().Counters.Commits; n < 30 {
			return fmt.Errorf("%d commits", n)
		}
		return nil
	})
	old.Stop() // the primary fails with the workload running
	<-done

	// Promote the replica that applied the most, once both saw the
	// primary go (nothing more arrives to apply).
	reps := []*nodetest.Node{c.Node("r1"), c.Node("r2")}
	for _, n := range reps {
		waitUntil(t, n.Name+" disconnected", func() error {
			if s := n.Replica().Status(); s.State != "disconnected" {
				return fmt.Errorf("state %s", s.State)
			}
			return nil
		})
	}
	if reps[1].Replica().Status().LastTID > reps[0].Replica().Status().LastTID {
		slices.Reverse(reps)
	}
	newP, other := reps[0], reps[1]
	// replctl refuses the less advanced one without --force.
	if other.Replica().Status().LastTID < newP.Replica().Status().LastTID {
		r := replctl(t, nil, all, "promote", other.Name)
		wantCode(t, r, exitError)
		if !strings.Contains(r.stderr, "promote the most advanced replica") {
			t.Errorf("promote of the replica behind: %s", r.stderr)
		}
	}
	r := replctl(t, nil, all, "promote", newP.Name)
	wantCode(t, r, 0)
	for _, want := range []string{
		newP.AdminAddr() + " POST /promote: ok",
		other.AdminAddr() + " POST /follow: ok",
		newP.Name + ": primary serving, epoch 2",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("promote output lacks %q:\n%s", want, r.stdout)
		}
	}
	ctx := t.Context()
	for _, tid := range acked {
		if _, err := newP.Store().Chain(ctx, tid); err != nil {
			t.Fatalf("acknowledged transaction %s lost by the promotion: %v", tid, err)
		}
	}
	t.Logf("%d acknowledged transactions kept", len(acked))

	c.WaitHealthy(other.Name)
	c.Workload(3, 2, 10)
	c.WaitCaughtUp(other.Name)
	survivors := "--nodes=" + newP.AdminAddr() + "," + other.AdminAddr()
	wantCode(t, replctl(t, nil, survivors, "verify"), 0)

	// The old primary comes back as a replica of the new one, holding a
	// transaction nobody else has.
	const lost = storage.OID(1 << 40)
	old.CommitExtra(storage.Transaction{
		Meta:    storage.TxnMeta{User: []byte("old primary")},
		Records: []storage.Record{{OID: lost, Data: []byte("never replicated")}},
	})
	old.StartAsReplica()
	c.WaitPrimaryQuarantined(old.Name)

	st := decode[statusReport](t, replctl(t, nil, all, "status", "--json"))
	if row := st.Nodes[0]; row.Role != "replica" || row.State != "quarantined" || row.CatchUp != nil || !strings.Contains(row.QuarantineReason, "divergent") {
		t.Errorf("status of the old primary = %+v", row)
	}
	r = replctl(t, nil, all, "verify", "--json")
	wantCode(t, r, exitInconsistent)
	if rep := decode[VerifyReport](t, r); !slices.Equal(rep.Disagreeing, []string{old.Name}) {
		t.Errorf("verify disagreeing = %q, want [%s]", rep.Disagreeing, old.Name)
	}

	r = replctl(t, nil, all, "diff", newP.Name, old.Name, "--json")
	wantCode(t, r, exitInconsistent)
	dr := decode[DiffReport](t, r)
	tid, kind := firstDifference(tids(t, newP.Store()), tids(t, old.Store()))
	if dr.First == nil || dr.First.TID != tid || dr.First.Kind != kind {
		t.Errorf("diff first difference %+v, want %s (%s)", dr.First, tid, kind)
	}
	if got := diffOIDs(dr.State.Diffs); !slices.Contains(got, lost) {
		t.Errorf("diff state diffs %v lack the old primary's object %s", got, lost)
	}
}
